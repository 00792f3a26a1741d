Console.WriteLine("EdmKernels bench: under construction");
