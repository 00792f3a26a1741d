// An exclusive lock on a training run's folder, so two trainings never write into one folder at
// once. The lock is an open file ".train.lock" with FileShare.None (on Linux and macOS .NET takes
// an advisory flock on it; on Windows the share mode itself excludes): the operating system drops it
// when the process exits in any way, SIGKILL included, so a lock left by a killed process is stale
// and the next run takes it over. The holder's PID goes to ".train.pid" for the message of a
// refused second run.
namespace Edm.Model.Training;

/// <summary>The run folder is locked by another training process.</summary>
public sealed class RunLockedException(string message) : Exception(message);

/// <summary>Holds the exclusive lock of a run folder until disposed.</summary>
public sealed class RunLock : IDisposable
{
    /// <summary>Name of the lock file in the run folder.</summary>
    public const string LockName = ".train.lock";
    /// <summary>Name of the file with the holder's process id.</summary>
    public const string PidName = ".train.pid";

    readonly FileStream _lock;
    readonly string _pidPath;

    RunLock(FileStream lockFile, string pidPath)
    {
        _lock = lockFile;
        _pidPath = pidPath;
    }

    /// <summary>
    /// Takes the lock of <paramref name="dir"/> (which must exist), or throws
    /// <see cref="RunLockedException"/> naming the process that holds it.
    /// </summary>
    public static RunLock Acquire(string dir)
    {
        string lockPath = Path.Combine(dir, LockName), pidPath = Path.Combine(dir, PidName);
        FileStream fs;
        try { fs = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
        catch (IOException) when (File.Exists(lockPath))
        {
            string holder = "another process";
            try { holder = $"process {File.ReadAllText(pidPath).Trim()}"; } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw new RunLockedException($"the run folder '{dir}' is in use by {holder} (a training writing into it); " +
                "wait for it to finish or stop it, or train into another folder");
        }
        try { File.WriteAllText(pidPath, Environment.ProcessId + "\n"); }
        catch { fs.Dispose(); throw; }
        return new RunLock(fs, pidPath);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        try { File.Delete(_pidPath); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        _lock.Dispose();
    }

    /// <summary>
    /// Deletes the temporary files an interrupted atomic write left in <paramref name="dir"/>
    /// (".NAME.tmp-*"); call it only while holding the lock, when no write of this run is in flight.
    /// Returns how many were removed.
    /// </summary>
    public static int RemoveStaleTemporaries(string dir)
    {
        int n = 0;
        foreach (var f in Directory.EnumerateFiles(dir, ".*.tmp-*"))
        {
            try { File.Delete(f); n++; } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        return n;
    }
}
