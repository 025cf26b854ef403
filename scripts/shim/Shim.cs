// What scripts/Get-IMAPAccessToken.ps1 does once PowerShell has bound its parameters: find the
// program, turn the bound parameters into its arguments, run it, and put each of its tagged
// lines into the PowerShell stream the original script used.
//
// Why compiled: this script runs before every mail fetch, and PowerShell compiles (JIT) every
// construct, .NET member and kind of pipeline a script uses at every start; a native command in
// a pipeline alone cost ~80 ms, the script's own steps ~100 ms more (`deno task bench`). This
// code is compiled once, at build time; .NET's own libraries are precompiled.
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Management.Automation;
using System.Reflection;
using System.Text;
using System.Threading.Tasks;

namespace GetImapAccessToken
{
    public static class Shim
    {
        /// <summary>Set for the program: it then tags every line with its stream (src/output/sink.ts).</summary>
        const string StreamsVariable = "GET_IMAPACCESSTOKEN_STREAMS";
        /// <summary>Another command to run instead of the program beside the script.</summary>
        const string CommandVariable = "GET_IMAP_ACCESS_TOKEN_COMMAND";

        static readonly UTF8Encoding Utf8 = new UTF8Encoding(false);

        sealed class ShimError : Exception
        {
            public ShimError(string message) : base(message) { }
        }

        /// <summary>
        /// Runs the program for the script `cmdlet` (its bound parameters become the arguments) and
        /// returns the program's exit code, or 1 when it could not be run. `input` is the pipeline
        /// input (the program's standard input), or null: the program reads the console's.
        /// </summary>
        public static int Run(PSCmdlet cmdlet, string scriptRoot, object[] input)
        {
            // PowerShell runs programs in its current location, which is not the process's.
            var location = cmdlet.SessionState.Path.CurrentFileSystemLocation.ProviderPath;
            List<string> command;
            try
            {
                command = Command(cmdlet, scriptRoot, location);
            }
            catch (ShimError e)
            {
                Host(cmdlet, "ERROR: " + e.Message, ConsoleColor.Red);
                return 1;
            }
            var arguments = command.GetRange(1, command.Count - 1);
            arguments.AddRange(Arguments(cmdlet));
            return Start(cmdlet, command[0], arguments, input, location);
        }

        /// <summary>Write-Host without Write-Host: an information record tagged PSHOST.</summary>
        static void Host(PSCmdlet cmdlet, string text, ConsoleColor? color)
        {
            var message = new HostInformationMessage { Message = text };
            if (color.HasValue) message.ForegroundColor = color.Value;
            cmdlet.WriteInformation(message, new[] { "PSHOST" });
        }

        /// <summary>
        /// GET_IMAP_ACCESS_TOKEN_COMMAND split into words, or the program beside the script: in the
        /// folder named after this platform's deno compile target, or directly beside it.
        /// </summary>
        static List<string> Command(PSCmdlet cmdlet, string scriptRoot, string location)
        {
            var words = SplitCommand(Environment.GetEnvironmentVariable(CommandVariable) ?? "");
            if (words.Count > 0)
            {
                var program = words[0];
                if (program.IndexOfAny(new[] { '/', '\\' }) < 0)
                {
                    // A bare name is looked up as `&` does: on PATH (on Windows, .NET's own
                    // lookup would try the process's folders before PATH).
                    var found = cmdlet.InvokeCommand.GetCommand(program, CommandTypes.Application) as ApplicationInfo;
                    if (found == null) throw new ShimError(CommandVariable + ": " + program + " was not found on PATH.");
                    // A .cmd or .bat would run through cmd.exe, which splits and expands the
                    // arguments its own way (a secret with % or " would change).
                    var extension = found.Extension.ToLowerInvariant();
                    if (Environment.OSVersion.Platform == PlatformID.Win32NT && extension != ".exe" && extension != ".com")
                    {
                        throw new ShimError(CommandVariable + ": " + found.Path + " is not a program (.exe); name the program itself.");
                    }
                    words[0] = found.Path;
                }
                else if (!Path.IsPathRooted(program))
                {
                    // A relative path is relative to the current location, as with `&`.
                    words[0] = Path.Combine(location, program);
                }
                return words;
            }
            string target, name;
            if (Environment.OSVersion.Platform == PlatformID.Win32NT)
            {
                // Windows on ARM runs the x64 build emulated; there is no native one.
                target = "x86_64-pc-windows-msvc";
                name = "Get-IMAPAccessToken.exe";
            }
            else
            {
                // Only PowerShell 7 runs here (.NET, not .NET Framework, whose reference this
                // helper is built against for Windows PowerShell 5.1): RuntimeInformation is there.
                var info = Type.GetType("System.Runtime.InteropServices.RuntimeInformation, System.Runtime.InteropServices.RuntimeInformation", true);
                var platform = Type.GetType("System.Runtime.InteropServices.OSPlatform, System.Runtime.InteropServices.RuntimeInformation", true);
                var arch = Convert.ToString(info.GetProperty("OSArchitecture").GetValue(null), CultureInfo.InvariantCulture);
                var osx = platform.GetProperty("OSX").GetValue(null);
                var mac = (bool)info.GetMethod("IsOSPlatform").Invoke(null, new[] { osx });
                string cpu = arch == "X64" ? "x86_64" : arch == "Arm64" ? "aarch64" : null;
                if (cpu == null) throw new ShimError("there is no Get-IMAPAccessToken build for this CPU (" + arch + ").");
                target = mac ? cpu + "-apple-darwin" : cpu + "-unknown-linux-gnu";
                name = "Get-IMAPAccessToken";
            }
            var candidates = new[] { Path.Combine(scriptRoot, target, name), Path.Combine(scriptRoot, name) };
            foreach (var candidate in candidates)
            {
                if (File.Exists(candidate)) return new List<string> { candidate };
            }
            throw new ShimError("the Get-IMAPAccessToken program for " + target + " was not found (looked for " +
                string.Join(" and ", candidates) + "). Copy the folder " + target + " from the release next to " +
                "this script, or set " + CommandVariable + " to the command to run.");
        }

        /// <summary>
        /// Words separated by whitespace; '...' and "..." group literally; nothing is expanded
        /// (backslashes are ordinary characters, so Windows paths need no escaping).
        /// </summary>
        static List<string> SplitCommand(string text)
        {
            var words = new List<string>();
            var word = new StringBuilder();
            var inWord = false;
            char quote = '\0';
            foreach (var c in text)
            {
                if (quote != '\0')
                {
                    if (c == quote) quote = '\0'; else word.Append(c);
                }
                else if (c == '"' || c == '\'')
                {
                    quote = c;
                    inWord = true;
                }
                else if (char.IsWhiteSpace(c))
                {
                    if (inWord) words.Add(word.ToString());
                    word.Clear();
                    inWord = false;
                }
                else
                {
                    word.Append(c);
                    inWord = true;
                }
            }
            if (quote != '\0') throw new ShimError(CommandVariable + " has an unclosed " + quote + " quote.");
            if (inWord) words.Add(word.ToString());
            return words;
        }

        /// <summary>
        /// Exactly the parameters that were bound, each as one -Name:value argument, so that a value
        /// that looks like a parameter (a secret starting with '-') stays a value. PowerShell has
        /// already applied its common parameters except -Verbose; numbers become text in the
        /// invariant culture (2.5 stays "2.5" in a German session).
        /// </summary>
        static List<string> Arguments(PSCmdlet cmdlet)
        {
            var common = new HashSet<string>(Cmdlet.CommonParameters, StringComparer.OrdinalIgnoreCase);
            common.UnionWith(Cmdlet.OptionalCommonParameters);
            var arguments = new List<string>();
            object verbose = null;
            foreach (var pair in cmdlet.MyInvocation.BoundParameters)
            {
                var name = pair.Key;
                var value = pair.Value is PSObject wrapped ? wrapped.BaseObject : pair.Value;
                if (name.Equals("Verbose", StringComparison.OrdinalIgnoreCase)) { verbose = value; continue; }
                if (name.Equals("InputObject", StringComparison.OrdinalIgnoreCase) || common.Contains(name)) continue;
                if (value is SwitchParameter flag)
                {
                    arguments.Add(flag.IsPresent ? "-" + name : "-" + name + ":$false");
                }
                else if (value is Array list)
                {
                    // -Scopes a,b and -targetMailbox a,b arrive as arrays; the program takes one
                    // comma-separated value.
                    var items = new List<string>();
                    foreach (var item in list) items.Add(Text(item));
                    arguments.Add("-" + name + ":" + string.Join(",", items));
                }
                else
                {
                    arguments.Add("-" + name + ":" + Text(value));
                }
            }
            // The original also showed its verbose text when the caller had set
            // $VerbosePreference = 'Continue'; -Verbose:$false wins over that.
            if (verbose is SwitchParameter verboseFlag)
            {
                arguments.Add(verboseFlag.IsPresent ? "-Verbose" : "-Verbose:$false");
            }
            else if (verbose == null && Text(cmdlet.GetVariableValue("VerbosePreference")) == "Continue")
            {
                arguments.Add("-Verbose");
            }
            return arguments;
        }

        static string Text(object value)
        {
            if (value is PSObject wrapped) value = wrapped.BaseObject;
            if (value == null) return "";
            return value is IFormattable formattable
                ? formattable.ToString(null, CultureInfo.InvariantCulture)
                : value.ToString();
        }

        /// <summary>
        /// One command line that programs split back into exactly these arguments (the rules of
        /// CommandLineToArgvW, which .NET also applies on Linux and macOS): each argument quoted,
        /// backslashes before a quote doubled and the quote escaped; so are trailing backslashes.
        /// </summary>
        public static string CommandLine(IEnumerable<string> arguments)
        {
            var line = new StringBuilder();
            foreach (var argument in arguments)
            {
                if (line.Length > 0) line.Append(' ');
                line.Append('"');
                var backslashes = 0;
                foreach (var c in argument)
                {
                    if (c == '\\')
                    {
                        backslashes++;
                        continue;
                    }
                    line.Append('\\', c == '"' ? backslashes * 2 + 1 : backslashes);
                    backslashes = 0;
                    line.Append(c);
                }
                line.Append('\\', backslashes * 2);
                line.Append('"');
            }
            return line.ToString();
        }

        /// <summary>
        /// Runs the program and passes each of its lines on as it arrives, in order: O output (the
        /// server's lines: the script's output), I progress and prompts (Write-Host), W warnings
        /// (Write-Host, yellow), E errors and their advice (Write-Host, red), V verbose
        /// (Write-Verbose). An untagged line (an older program) is output.
        /// </summary>
        static int Start(PSCmdlet cmdlet, string program, List<string> arguments, object[] input, string location)
        {
            var info = new ProcessStartInfo(program, CommandLine(arguments))
            {
                WorkingDirectory = location,
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardInput = input != null,
                StandardOutputEncoding = Utf8,
            };
            info.EnvironmentVariables[StreamsVariable] = "1";
            Process process;
            try
            {
                process = Process.Start(info);
            }
            catch (Exception e) when (e is Win32Exception || e is FileNotFoundException || e is InvalidOperationException)
            {
                // Not found or not executable: no exit code to pass on.
                Host(cmdlet, "ERROR: cannot run " + program + ": " + e.Message.Split('\n')[0].TrimEnd('\r'), ConsoleColor.Red);
                return 1;
            }
            using (process)
            {
                Task writing = null;
                if (input != null)
                {
                    // Written beside the reading below, so that a program that answers before it has
                    // read all of its input cannot block on a full pipe.
                    var texts = new List<string>();
                    foreach (var item in input) texts.Add(item == null ? "" : PSObject.AsPSObject(item).ToString());
                    var stdin = process.StandardInput.BaseStream;
                    writing = Task.Run(() =>
                    {
                        try
                        {
                            using (var writer = new StreamWriter(stdin, Utf8))
                            {
                                foreach (var text in texts) writer.Write(text + Environment.NewLine);
                            }
                        }
                        catch (Exception e) when (e is IOException || e is ObjectDisposedException)
                        {
                            // The program stopped reading (it refused the input as too large, or
                            // it was stopped).
                        }
                    });
                }
                // Lines are read beside and passed on here, on the pipeline's thread (the only one
                // that may write to PowerShell's streams), which also watches for a stop.
                var lines = new BlockingCollection<string>();
                var stdout = process.StandardOutput;
                Exception readError = null;
                Task.Run(() =>
                {
                    try
                    {
                        string read;
                        while ((read = stdout.ReadLine()) != null) lines.Add(read);
                    }
                    catch (Exception e) when (e is IOException || e is ObjectDisposedException)
                    {
                        // Closed under the reader: the program was stopped.
                    }
                    catch (Exception e)
                    {
                        readError = e; // reported below, on the pipeline's thread
                    }
                    finally
                    {
                        lines.CompleteAdding();
                    }
                });
                var finished = false;
                try
                {
                    // Ctrl+C, Stop-Job, or a caller that took what it wanted (Select-Object
                    // -First 1) stop the program, as PowerShell stops any program; so does an
                    // error while passing a line on (a stream whose preference is Stop).
                    while (!lines.IsCompleted)
                    {
                        if (cmdlet.Stopping) throw new PipelineStoppedException();
                        if (lines.TryTake(out var line, 200)) Pass(cmdlet, line);
                    }
                    if (readError != null) throw new IOException("reading the program's output failed", readError);
                    // A program may close its output and go on.
                    while (!process.WaitForExit(200))
                    {
                        if (cmdlet.Stopping) throw new PipelineStoppedException();
                    }
                    finished = true;
                }
                finally
                {
                    if (!finished) Stop(process);
                }
                process.WaitForExit();
                writing?.Wait();
                var code = process.ExitCode;
                // As for any program (PowerShell 7.3+): with $PSNativeCommandUseErrorActionPreference
                // a failure is an error that $ErrorActionPreference = 'Stop' turns into an exception.
                if (code != 0 && LanguagePrimitives.IsTrue(cmdlet.GetVariableValue("PSNativeCommandUseErrorActionPreference")))
                {
                    var error = ExitError(program, code, process.Id);
                    if (error != null)
                    {
                        cmdlet.SessionState.PSVariable.Set("global:LASTEXITCODE", code);
                        cmdlet.WriteError(error);
                    }
                }
                return code;
            }
        }

        static void Stop(Process process)
        {
            try
            {
                if (!process.HasExited) process.Kill();
            }
            catch (Exception e) when (e is InvalidOperationException || e is Win32Exception)
            {
                // It ended meanwhile.
            }
        }

        /// <summary>
        /// The error PowerShell itself writes for a program that failed (NativeCommandExitException),
        /// or null in a PowerShell without it (before 7.3), where the preference does nothing.
        /// </summary>
        static ErrorRecord ExitError(string program, int code, int processId)
        {
            const string id = "ProgramExitedWithNonZeroCode";
            var message = "Program \"" + Path.GetFileName(program) + "\" ended with non-zero exit code: " +
                code.ToString(CultureInfo.InvariantCulture) + " (0x" + code.ToString("X2", CultureInfo.InvariantCulture) + ").";
            var type = typeof(PSObject).Assembly.GetType("System.Management.Automation.NativeCommandExitException");
            if (type == null) return null;
            Exception exception = null;
            var constructor = type.GetConstructor(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic, null,
                new[] { typeof(string), typeof(int), typeof(int), typeof(string), typeof(string) }, null);
            try
            {
                exception = (Exception)constructor?.Invoke(new object[] { program, code, processId, message, id });
            }
            catch (TargetInvocationException)
            {
                // Another PowerShell's constructor: a plain runtime error says the same.
            }
            return new ErrorRecord(exception ?? new RuntimeException(message), id, ErrorCategory.NotSpecified, program);
        }

        static void Pass(PSCmdlet cmdlet, string line)
        {
            if (line.Length < 2 || line[1] != ' ')
            {
                cmdlet.WriteObject(line);
                return;
            }
            var text = line.Substring(2);
            switch (line[0])
            {
                case 'O': cmdlet.WriteObject(text); break;
                case 'I': Host(cmdlet, text, null); break;
                case 'W': Host(cmdlet, text, ConsoleColor.Yellow); break;
                case 'E': Host(cmdlet, text, ConsoleColor.Red); break;
                case 'V': cmdlet.WriteVerbose(text); break;
                default: cmdlet.WriteObject(line); break;
            }
        }
    }
}
