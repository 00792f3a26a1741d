// A data-only reader of Python pickles (protocols 0 to 5), for PyTorch checkpoints and NVlabs/edm
// network snapshots. A pickle is a program for a small stack machine; Python's own unpickler runs
// it and calls whatever functions it names, which is why loading an untrusted pickle can run
// arbitrary code. This reader runs the same opcodes but calls nothing:
//
//   - a global (GLOBAL / STACK_GLOBAL: "module.name") becomes an inert PyGlobal record, and only
//     when the caller's IsAllowed accepts it; any other is refused by name;
//   - instantiating a class (NEWOBJ, NEWOBJ_EX, INST, OBJ, copyreg._reconstructor) builds an inert
//     PyObject (its class name, constructor arguments, BUILD state, and dict/list items);
//   - a call (REDUCE) is answered only for the few functions of Python's own containers handled
//     here (OrderedDict, set, frozenset, bytearray, _codecs.encode) and for those the caller's Call
//     knows (torch's tensor rebuild functions); any other call is refused with its name;
//   - extension codes (EXT1/2/4) and out-of-band buffers (NEXT_BUFFER) are refused.
// Python values map to: None -> null, bool, int -> long (BigInteger when it does not fit), float ->
// double, str -> string, bytes/bytearray -> byte[], list -> List<object?>, tuple -> object?[],
// dict -> PyDict (insertion order kept), set/frozenset -> PySet.
// Why our own and not a pickle library: the one on NuGet maps every unknown global to a
// dictionary-building constructor and has no way to refuse calls; what torch and edm write needs
// the ~60 opcodes below, and a reader that refuses everything else is the point for untrusted files.
using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace Edm.Model.IO;

/// <summary>A pickle is malformed, or asks for something this reader does not do (a call, a global).</summary>
public sealed class PickleException(string message) : Exception(message);

/// <summary>A reference to a Python global ("module.name"); never resolved to code.</summary>
public sealed record PyGlobal(string Module, string Name)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>An instance of a class named by a pickle, kept as data: class, constructor arguments, state and items.</summary>
public sealed class PyObject(PyGlobal cls, object?[] args)
{
    /// <summary>The class.</summary>
    public PyGlobal Class { get; } = cls;
    /// <summary>The arguments given to the class (NEWOBJ) or its reconstructor.</summary>
    public object?[] Args { get; } = args;
    /// <summary>The state set by BUILD (usually a PyDict of attributes), or null.</summary>
    public object? State { get; set; }
    /// <summary>Items added by SETITEM(S) (dict subclasses), or null.</summary>
    public PyDict? DictItems { get; set; }
    /// <summary>Items added by APPEND(S) (list subclasses), or null.</summary>
    public List<object?>? ListItems { get; set; }

    /// <inheritdoc/>
    public override string ToString() => $"{Class} instance";
}

/// <summary>A Python set or frozenset.</summary>
public sealed class PySet(IEnumerable<object?> items)
{
    /// <summary>The items in pickle order.</summary>
    public List<object?> Items { get; } = items.ToList();
}

/// <summary>A Python dict with its insertion order.</summary>
public sealed class PyDict
{
    readonly List<KeyValuePair<object?, object?>> _items = new();
    readonly Dictionary<object, int> _index = new();

    /// <summary>Number of entries.</summary>
    public int Count => _items.Count;
    /// <summary>The entries in insertion order.</summary>
    public IReadOnlyList<KeyValuePair<object?, object?>> Items => _items;

    /// <summary>Sets <paramref name="key"/> (a later value replaces an earlier one, keeping its place, as Python does).</summary>
    public void Set(object? key, object? value)
    {
        var k = IndexKey(key);
        if (k is not null && _index.TryGetValue(k, out int i)) { _items[i] = new(key, value); return; }
        if (k is not null) _index[k] = _items.Count;
        _items.Add(new(key, value));
    }

    /// <summary>The value under a string key.</summary>
    public bool TryGet(string key, out object? value)
    {
        if (_index.TryGetValue(key, out int i)) { value = _items[i].Value; return true; }
        value = null;
        return false;
    }

    /// <summary>The value under a string key, or null when absent.</summary>
    public object? Get(string key) => TryGet(key, out var v) ? v : null;

    /// <summary>The string keys in order (other keys skipped).</summary>
    public IEnumerable<string> StringKeys => _items.Select(kv => kv.Key).OfType<string>();

    // Strings, integers and bools hash by value; other keys (tuples ...) are kept but not indexed.
    static object? IndexKey(object? key) => key switch
    {
        string or long or bool or BigInteger => key,
        _ => null,
    };
}

/// <summary>Reads one pickle from a stream (see the file header).</summary>
public sealed class Unpickler
{
    /// <summary>Longest string, bytes or container count accepted from a length field (a guard against corrupt lengths).</summary>
    public const long MaxLength = 1L << 31;

    readonly Stream _s;
    readonly string _source;
    readonly Func<PyGlobal, bool> _isAllowed;
    readonly Func<PyGlobal, object?[], object?>? _call;
    readonly Func<object?, object?>? _persistentLoad;
    readonly List<object?> _stack = new();
    readonly Stack<List<object?>> _marks = new();
    readonly Dictionary<long, object?> _memo = new();

    static readonly object Mark = new();

    /// <summary>
    /// A reader over <paramref name="stream"/> (read up to and including the STOP opcode, no further).
    /// <paramref name="isAllowed"/> accepts the globals the pickle may name; <paramref name="call"/>
    /// answers REDUCE for the functions it knows (return a value, or throw a <see cref="PickleException"/>);
    /// <paramref name="persistentLoad"/> resolves persistent ids (PERSID / BINPERSID).
    /// <paramref name="source"/> names the file in messages.
    /// </summary>
    public Unpickler(Stream stream, string source, Func<PyGlobal, bool> isAllowed, Func<PyGlobal, object?[], object?>? call = null,
        Func<object?, object?>? persistentLoad = null)
    {
        _s = stream;
        _source = source;
        _isAllowed = isAllowed;
        _call = call;
        _persistentLoad = persistentLoad;
    }

    PickleException Error(string what) => new($"{_source}: {what}");

    byte ReadByte()
    {
        int b = _s.ReadByte();
        if (b < 0) throw Error("the pickle ends before its STOP opcode (truncated file?)");
        return (byte)b;
    }

    byte[] ReadBytes(long n)
    {
        if (n < 0 || n > MaxLength) throw Error($"a length field says {n} bytes (corrupt file?)");
        var b = new byte[n];
        try { _s.ReadExactly(b); }
        catch (EndOfStreamException) { throw Error($"the pickle ends inside a {n}-byte field (truncated file?)"); }
        return b;
    }

    string ReadLine()
    {
        var sb = new StringBuilder();
        for (byte b; (b = ReadByte()) != (byte)'\n';)
        {
            if (sb.Length > 1 << 20) throw Error("a text field has no end of line (corrupt file?)");
            sb.Append((char)b);
        }
        return sb.ToString();
    }

    int ReadU8() => ReadByte();
    int ReadU16() => BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2));
    int ReadI32() => BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4));
    long ReadU32() => BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4));
    long ReadI64Length()
    {
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(ReadBytes(8));
        return n > (ulong)MaxLength ? throw Error($"a length field says {n} bytes (corrupt file?)") : (long)n;
    }

    void Push(object? o) => _stack.Add(o);

    object? Pop()
    {
        if (_stack.Count == 0) throw Error("the pickle pops an empty stack (corrupt file?)");
        var o = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        if (ReferenceEquals(o, Mark)) throw Error("the pickle pops a MARK as a value (corrupt file?)");
        return o;
    }

    object? Top() => _stack.Count > 0 ? _stack[^1] : throw Error("the pickle reads an empty stack (corrupt file?)");

    List<object?> PopMark()
    {
        if (_marks.Count == 0) throw Error("the pickle closes a MARK it never opened (corrupt file?)");
        var items = new List<object?>(_stack);
        _stack.Clear();
        _stack.AddRange(_marks.Pop());
        return items;
    }

    /// <summary>Runs the pickle and returns its value.</summary>
    public object? Load()
    {
        while (true)
        {
            byte op = ReadByte();
            switch (op)
            {
                case 0x80: // PROTO
                    if (ReadU8() > 5) throw Error("pickle protocol above 5 is not supported");
                    break;
                case 0x95: ReadBytes(8); break;                                    // FRAME (length only)
                case (byte)'.': return _stack.Count == 1 ? Pop() : throw Error("the pickle stops with a malformed stack (corrupt file?)");
                case (byte)'(': _marks.Push(new List<object?>(_stack)); _stack.Clear(); break; // MARK
                case (byte)'0': Pop(); break;                                     // POP
                case (byte)'1': PopMark(); break;                                 // POP_MARK
                case (byte)'2': Push(Top()); break;                               // DUP

                // Scalars.
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'J': Push((long)ReadI32()); break;                     // BININT
                case (byte)'K': Push((long)ReadU8()); break;                      // BININT1
                case (byte)'M': Push((long)ReadU16()); break;                     // BININT2
                case (byte)'I':                                                   // INT (text)
                {
                    string line = ReadLine();
                    if (line == "01") Push(true);
                    else if (line == "00") Push(false);
                    else Push(ParseLong(line));
                    break;
                }
                case (byte)'L': Push(ParseLong(ReadLine().TrimEnd('L'))); break;  // LONG (text)
                case 0x8a: Push(LongFrom(ReadBytes(ReadU8()))); break;            // LONG1
                case 0x8b:                                                        // LONG4
                {
                    int n = ReadI32();
                    if (n < 0 || n > 1 << 16) throw Error($"LONG4 of {n} bytes (corrupt file?)");
                    Push(LongFrom(ReadBytes(n)));
                    break;
                }
                case (byte)'F':                                                   // FLOAT (text)
                {
                    string line = ReadLine();
                    Push(double.TryParse(line, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : throw Error($"FLOAT '{line}' is not a number"));
                    break;
                }
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(ReadBytes(8))); break; // BINFLOAT

                // Strings and bytes.
                case (byte)'X': Push(Utf8(ReadBytes(ReadU32()))); break;          // BINUNICODE
                case 0x8c: Push(Utf8(ReadBytes(ReadU8()))); break;                // SHORT_BINUNICODE
                case 0x8d: Push(Utf8(ReadBytes(ReadI64Length()))); break;         // BINUNICODE8
                case (byte)'V': Push(RawUnicodeEscape(ReadLine())); break;        // UNICODE (text)
                case (byte)'S': Push(PythonStringLiteral(ReadLine())); break;     // STRING (text, a Python 2 str)
                case (byte)'T': Push(Latin1(ReadBytes(ReadI32()))); break;        // BINSTRING
                case (byte)'U': Push(Latin1(ReadBytes(ReadU8()))); break;         // SHORT_BINSTRING
                case (byte)'B': Push(ReadBytes(ReadU32())); break;                // BINBYTES
                case (byte)'C': Push(ReadBytes(ReadU8())); break;                 // SHORT_BINBYTES
                case 0x8e: Push(ReadBytes(ReadI64Length())); break;               // BINBYTES8
                case 0x96: Push(ReadBytes(ReadI64Length())); break;               // BYTEARRAY8

                // Containers.
                case (byte)']': Push(new List<object?>()); break;                 // EMPTY_LIST
                case (byte)'l': Push(PopMark()); break;                           // LIST
                case (byte)'a': Append(Top2(), [Pop()]); break;                   // APPEND
                case (byte)'e': { var items = PopMark(); Append(Top(), items); break; } // APPENDS
                case (byte)')': Push(Array.Empty<object?>()); break;              // EMPTY_TUPLE
                case (byte)'t': Push(PopMark().ToArray()); break;                 // TUPLE
                case 0x85: Push(new[] { Pop() }); break;                          // TUPLE1
                case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; }
                case (byte)'}': Push(new PyDict()); break;                        // EMPTY_DICT
                case (byte)'d': { var d = new PyDict(); SetItems(d, PopMark()); Push(d); break; } // DICT
                case (byte)'s': { var v = Pop(); var k = Pop(); SetItems(Top(), [k, v]); break; } // SETITEM
                case (byte)'u': { var items = PopMark(); SetItems(Top(), items); break; }        // SETITEMS
                case 0x8f: Push(new PySet([])); break;                            // EMPTY_SET
                case 0x90:                                                        // ADDITEMS
                {
                    var items = PopMark();
                    (Top() as PySet ?? throw Error("ADDITEMS on something that is not a set")).Items.AddRange(items);
                    break;
                }
                case 0x91: Push(new PySet(PopMark())); break;                     // FROZENSET

                // Memo.
                case (byte)'p': _memo[ParseLong(ReadLine())] = Top(); break;      // PUT
                case (byte)'q': _memo[ReadU8()] = Top(); break;                   // BINPUT
                case (byte)'r': _memo[ReadU32()] = Top(); break;                  // LONG_BINPUT
                case 0x94: _memo[_memo.Count] = Top(); break;                     // MEMOIZE
                case (byte)'g': Push(Memo(ParseLong(ReadLine()))); break;         // GET
                case (byte)'h': Push(Memo(ReadU8())); break;                      // BINGET
                case (byte)'j': Push(Memo(ReadU32())); break;                     // LONG_BINGET

                // Globals, objects and calls.
                case (byte)'c': Push(Global(ReadLine(), ReadLine())); break;      // GLOBAL
                case 0x93:                                                        // STACK_GLOBAL
                {
                    var name = Pop() as string ?? throw Error("STACK_GLOBAL without a string name");
                    var module = Pop() as string ?? throw Error("STACK_GLOBAL without a string module");
                    Push(Global(module, name));
                    break;
                }
                case 0x81:                                                        // NEWOBJ
                {
                    var args = Pop() as object?[] ?? throw Error("NEWOBJ without an argument tuple");
                    Push(NewObject(Pop(), args));
                    break;
                }
                case 0x92:                                                        // NEWOBJ_EX
                {
                    Pop();                                                        // kwargs (kept out: classes are data here)
                    var args = Pop() as object?[] ?? throw Error("NEWOBJ_EX without an argument tuple");
                    Push(NewObject(Pop(), args));
                    break;
                }
                case (byte)'i':                                                   // INST
                {
                    var g = Global(ReadLine(), ReadLine());
                    Push(NewObject(g, PopMark().ToArray()));
                    break;
                }
                case (byte)'o':                                                   // OBJ
                {
                    var items = PopMark();
                    if (items.Count == 0) throw Error("OBJ without a class");
                    Push(NewObject(items[0], items.Skip(1).ToArray()));
                    break;
                }
                case (byte)'R':                                                   // REDUCE
                {
                    var args = Pop() as object?[] ?? throw Error("REDUCE without an argument tuple");
                    Push(Reduce(Pop(), args));
                    break;
                }
                case (byte)'b': { var state = Pop(); Build(Top(), state); break; } // BUILD
                case (byte)'P': Push(Persistent(ReadLine())); break;              // PERSID
                case (byte)'Q': Push(Persistent(Pop())); break;                   // BINPERSID
                case 0x82 or 0x83 or 0x84:
                    throw Error("the pickle uses the extension registry (EXT1/EXT2/EXT4), which this reader does not support");
                case 0x97 or 0x98:
                    throw Error("the pickle uses out-of-band buffers (protocol 5 NEXT_BUFFER), which this reader does not support");
                default:
                    throw Error($"unknown pickle opcode 0x{op:x2} at byte {_s.Position - 1} (not a pickle, or a corrupt one)");
            }
        }
    }

    object? Top2() => _stack.Count >= 2 ? _stack[^2] : throw Error("APPEND on a short stack (corrupt file?)");

    object? Memo(long key) => _memo.TryGetValue(key, out var v) ? v : throw Error($"the pickle refers to memo entry {key}, never stored (corrupt file?)");

    long ParseLong(string s) => long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v) ? v : throw Error($"'{s}' is not an integer");

    static object LongFrom(byte[] b)
    {
        var v = new BigInteger(b, isUnsigned: false, isBigEndian: false);
        return v >= long.MinValue && v <= long.MaxValue ? (long)v : v;
    }

    string Utf8(byte[] b)
    {
        try { return new UTF8Encoding(false, true).GetString(b); }
        catch (DecoderFallbackException) { throw Error("a string is not valid UTF-8 (corrupt file?)"); }
    }

    static string Latin1(byte[] b) => Encoding.Latin1.GetString(b);

    static string RawUnicodeEscape(string s)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && i + 5 < s.Length && s[i + 1] == 'u')
            {
                sb.Append((char)Convert.ToInt32(s.Substring(i + 2, 4), 16));
                i += 5;
            }
            else sb.Append(s[i]);
        }
        return sb.ToString();
    }

    string PythonStringLiteral(string s)
    {
        if (s.Length < 2 || s[0] != s[^1] || s[0] is not ('\'' or '"')) throw Error($"STRING {s} is not a quoted literal");
        return System.Text.RegularExpressions.Regex.Unescape(s[1..^1]);
    }

    void Append(object? target, List<object?> items)
    {
        switch (target)
        {
            case List<object?> l: l.AddRange(items); break;
            case PyObject o: (o.ListItems ??= new()).AddRange(items); break;
            default: throw Error($"APPEND to {Describe(target)}, which is not a list");
        }
    }

    void SetItems(object? target, List<object?> kv)
    {
        if (kv.Count % 2 != 0) throw Error("SETITEMS with an odd number of items (corrupt file?)");
        var d = target switch
        {
            PyDict pd => pd,
            PyObject o => o.DictItems ??= new PyDict(),
            _ => throw Error($"SETITEM on {Describe(target)}, which is not a dict"),
        };
        for (int i = 0; i < kv.Count; i += 2) d.Set(kv[i], kv[i + 1]);
    }

    PyGlobal Global(string module, string name)
    {
        var g = new PyGlobal(module, name);
        if (!_isAllowed(g))
            throw Error($"the pickle names the global '{g}', which this reader refuses: only data (tensors, containers, " +
                        "records of known classes) is read, never code");
        return g;
    }

    object? NewObject(object? cls, object?[] args)
    {
        if (cls is not PyGlobal g) throw Error($"the pickle instantiates {Describe(cls)}, which is not a class");
        if (g is { Module: "collections", Name: "OrderedDict" } or { Module: "builtins" or "__builtin__", Name: "dict" }) return new PyDict();
        if (g is { Module: "builtins" or "__builtin__", Name: "list" }) return new List<object?>();
        return new PyObject(g, args);
    }

    object? Reduce(object? callable, object?[] args)
    {
        if (callable is not PyGlobal g) throw Error($"the pickle calls {Describe(callable)}, which is not a named function");
        switch (g.Module, g.Name)
        {
            case ("collections", "OrderedDict"):
            {
                var d = new PyDict();
                if (args.Length > 0 && args[0] is List<object?> pairs)
                    foreach (var p in pairs)
                        if (p is object?[] { Length: 2 } kv) d.Set(kv[0], kv[1]);
                return d;
            }
            case ("builtins" or "__builtin__", "set" or "frozenset"):
                return new PySet(args.Length > 0 && args[0] is List<object?> l ? l : []);
            case ("builtins" or "__builtin__", "bytearray"):
                return args.Length > 0 && args[0] is byte[] bytes ? bytes : [];
            case ("_codecs", "encode"):                                           // protocol 2's bytes: _codecs.encode(str, 'latin1')
                return args is [string s, "latin1" or "latin-1"] ? Encoding.Latin1.GetBytes(s)
                    : throw Error("_codecs.encode with arguments other than (str, 'latin1')");
            case ("copyreg" or "copy_reg", "_reconstructor"):                     // object.__reduce__: (cls, base, state)
                return args is [PyGlobal cls, ..] ? new PyObject(cls, []) : throw Error("copyreg._reconstructor without a class");
        }
        if (_call is null) throw Error($"the pickle calls '{g}', which this reader refuses: only data is read, never code");
        return _call(g, args);
    }

    void Build(object? target, object? state)
    {
        switch (target)
        {
            case PyObject o: o.State = state; break;
            case PyDict:                                                          // attributes of a dict (torch's state_dict._metadata): not items
                break;
            case not null when state is null: break;
            default: throw Error($"BUILD on {Describe(target)}, which takes no state here");
        }
    }

    object? Persistent(object? pid)
    {
        if (_persistentLoad is null) throw Error("the pickle refers to external data (a persistent id) that this file cannot hold");
        return _persistentLoad(pid);
    }

    /// <summary>A short description of a value for messages.</summary>
    public static string Describe(object? o) => o switch
    {
        null => "None",
        PyGlobal g => $"'{g}'",
        PyObject p => $"an instance of '{p.Class}'",
        PyDict => "a dict",
        List<object?> => "a list",
        object?[] => "a tuple",
        string => "a string",
        _ => $"a {o.GetType().Name}",
    };
}
