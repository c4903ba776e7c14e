// Drives the official .NET SignalR client (the generation this build references) against SignalR servers and prints
// what it observed, one JSON object per line: {"server","transport","protocol","check","value"} — or "error" in
// place of "value" when the check threw. The jest test (test/integration/dotnet-client.test.ts) asserts the lines.
//
// Settings, from the environment:
//   SERVERS          comma list of name=baseUrl; each serves the chat contract at /chathub and GET /ask/{id}
//   EXTRAS_SERVER    the name of the server whose chat hub is also behind PROXY_URL and has a JavaScript client
//                    in MIXED_ROOM; the checks of the JWT hub and of stateful reconnect run in its turn
//   PROXY_URL        a TCP proxy in front of EXTRAS_SERVER; POST CUT_URL?room=… cuts its connections, then sends
//                    "server: s1" … "server: s3" to that room
//   SECURE_URL       a server whose hub /secure requires a JWT; WhoAmI answers the token's subject
//   JWT              a token /secure accepts
//   MIXED_ROOM       a group a JavaScript client is in, which answers "js"/"re: <message>" to what it receives
//   <NAME>_PROTOCOLS the hub protocols server <NAME> (upper case) offers, e.g. REFERENCE_PROTOCOLS=json; all the
//                    client has when unset
//   RAW_PATH         a raw connection endpoint (no hub protocol) every server has, e.g. /echo: what a client sends
//                    comes back; "bye" makes the server end the connection; ?binary=true makes its frames Binary
//   TRANSPORTS       comma list of WebSockets, ServerSentEvents, LongPolling (all when unset)
using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using System.Buffers;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.Http.Connections.Client;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
#if MESSAGEPACK
using Microsoft.Extensions.DependencyInjection;
#endif

var clientVersion = typeof(HubConnection).Assembly.GetName().Version!;
var servers = (Environment.GetEnvironmentVariable("SERVERS") ?? "")
    .Split(',', StringSplitOptions.RemoveEmptyEntries)
    .Select(entry => entry.Split('=', 2))
    .Select(pair => (Name: pair[0], Url: pair[1].TrimEnd('/')))
    .ToList();
var extrasServer = Environment.GetEnvironmentVariable("EXTRAS_SERVER");
var transportNames = (Environment.GetEnvironmentVariable("TRANSPORTS") ?? "WebSockets,ServerSentEvents,LongPolling")
    .Split(',', StringSplitOptions.RemoveEmptyEntries);

var protocols = new List<string> { "json" };
#if MESSAGEPACK
protocols.Add("messagepack");
#endif

var output = new Reporter();
output.Line(new { check = "client", value = new { version = clientVersion.ToString(), protocols } });

foreach (var (serverName, baseUrl) in servers)
{
    foreach (var transportName in transportNames)
    {
        var transport = Enum.Parse<HttpTransportType>(transportName);
        var offered = Environment.GetEnvironmentVariable($"{serverName.ToUpperInvariant()}_PROTOCOLS")?.Split(',');
        foreach (var protocol in protocols)
        {
            if (offered is not null && !offered.Contains(protocol)) continue;
            // Server-Sent Events carry text only: .NET's clients never use MessagePack over them.
            if (protocol == "messagepack" && transport == HttpTransportType.ServerSentEvents) continue;
            var scope = new Scope(output, serverName, transportName, protocol);
            await Contract.Run(scope, baseUrl, transport, protocol);
            if (protocol == "json" && Environment.GetEnvironmentVariable("RAW_PATH") is { Length: > 0 } rawPath)
            {
                await Raw.Run(scope, $"{baseUrl}{rawPath}", transport);
            }
            if (serverName == extrasServer) await Extras.Run(scope, baseUrl, transport, protocol);
        }
    }
}
output.Line(new { check = "done" });
return 0;

/// <summary>Writes the result lines; stdout is flushed after each so the test sees progress.</summary>
internal sealed class Reporter
{
    private readonly object gate = new();

    public void Line(object line)
    {
        lock (gate)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(line));
            Console.Out.Flush();
        }
    }
}

/// <summary>One server × transport × protocol: runs checks and reports each under its name.</summary>
internal sealed class Scope(Reporter reporter, string server, string transport, string protocol)
{
    public string Transport => transport;

    public async Task Check(string check, Func<Task<object?>> run)
    {
        try
        {
            var value = await run().WaitAsync(TimeSpan.FromSeconds(20));
            reporter.Line(new { server, transport, protocol, check, value });
        }
        catch (Exception e)
        {
            reporter.Line(new { server, transport, protocol, check, error = $"{e.GetType().Name}: {e.Message}" });
        }
    }
}

/// <summary>Builds connections the way an application does.</summary>
internal static class Connections
{
    public static HubConnection Build(
        string url,
        HttpTransportType transport,
        string protocol,
        Func<Task<string?>>? accessToken = null,
        bool statefulReconnect = false)
    {
        var builder = new HubConnectionBuilder().WithUrl(url, transport, options =>
        {
            if (accessToken is not null) options.AccessTokenProvider = accessToken!;
        });
#if MESSAGEPACK
        if (protocol == "messagepack") builder.AddMessagePackProtocol();
#endif
#if STATEFUL_RECONNECT
        if (statefulReconnect) builder.WithStatefulReconnect();
#endif
        return builder.Build();
    }

    /// <summary>The message arguments of ReceiveMessage(user, message), collected in order.</summary>
    public static MessageLog Messages(HubConnection connection)
    {
        var log = new MessageLog();
        connection.On<string?, string?>("ReceiveMessage", (user, message) => log.Add($"{user}: {message}"));
        return log;
    }
}

/// <summary>Messages received, and a way to wait for one.</summary>
internal sealed class MessageLog
{
    private readonly List<string> items = new();
    private readonly object gate = new();
    private TaskCompletionSource<bool> changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Add(string item)
    {
        lock (gate)
        {
            items.Add(item);
            changed.TrySetResult(true);
            changed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    public List<string> Snapshot()
    {
        lock (gate) return items.ToList();
    }

    /// <summary>Waits until a message satisfies <paramref name="predicate"/>; returns every message up to then.</summary>
    public async Task<List<string>> WaitFor(Func<string, bool> predicate, int timeoutMs = 10_000)
    {
        var clock = Stopwatch.StartNew();
        for (;;)
        {
            Task wait;
            lock (gate)
            {
                if (items.Any(predicate)) return items.ToList();
                wait = changed.Task;
            }
            var left = timeoutMs - (int)clock.ElapsedMilliseconds;
            if (left <= 0 || await Task.WhenAny(wait, Task.Delay(left)) != wait)
            {
                throw new TimeoutException($"no such message within {timeoutMs} ms; got [{string.Join(" | ", Snapshot())}]");
            }
        }
    }
}

/// <summary>The object of SendValues: property names as on the wire, so JSON and MessagePack bind alike.</summary>
public sealed class Shape
{
#pragma warning disable IDE1006 // wire names
    public int a { get; set; }
    public int[]? b { get; set; }
#pragma warning restore IDE1006
}

/// <summary>The chat contract, which both the reference server and ours serve at /chathub.</summary>
internal static class Contract
{
    public static async Task Run(Scope scope, string baseUrl, HttpTransportType transport, string protocol)
    {
        var user = $"dotnet-{Guid.NewGuid():N}";
        var connection = Connections.Build($"{baseUrl}/chathub?user={user}", transport, protocol);
        var messages = Connections.Messages(connection);
        var values = new TaskCompletionSource<object?[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.On(
            "Values",
            new[] { typeof(int), typeof(int), typeof(int), typeof(int), typeof(long), typeof(double), typeof(bool), typeof(string), typeof(string), typeof(byte[]), typeof(DateTime), typeof(Shape) },
            (arguments, _) =>
            {
                values.TrySetResult(arguments);
                return Task.CompletedTask;
            },
            null!);
#if CLIENT_RESULTS
        connection.On<string, string>("GetAnswer", question => $"the .NET client answers {question}");
#endif
        try
        {
            await scope.Check("start", async () =>
            {
                await connection.StartAsync();
                return "started";
            });

            await scope.Check("echo", async () => new object?[]
            {
                await connection.InvokeAsync<string>("Echo", "héllo ✓"),
                await connection.InvokeAsync<int>("Echo", 42),
                await connection.InvokeAsync<long>("Echo", 5_000_000_000L),
                await connection.InvokeAsync<double>("Echo", 3.5),
                await connection.InvokeAsync<bool>("Echo", true),
                await connection.InvokeAsync<string?>("Echo", (object?)null),
                await connection.InvokeAsync<int[]>("Echo", new[] { 1, 2, 3 }),
            });

            await scope.Check("who am I", async () => await connection.InvokeAsync<string?>("WhoAmI") == user);

            await scope.Check("all", async () =>
            {
                await connection.InvokeAsync("SendMessage", "me", "to all");
                return (await messages.WaitFor(m => m == "me: to all")).Last();
            });

            await scope.Check("groups", async () =>
            {
                var room = $"room-{Guid.NewGuid():N}";
                await connection.InvokeAsync("JoinRoom", room);
                await connection.InvokeAsync("SendToRoom", room, "me", "in the room");
                await messages.WaitFor(m => m == "me: in the room");
                await connection.InvokeAsync("LeaveRoom", room);
                await connection.InvokeAsync("SendToRoom", room, "me", "after leaving");
                // Messages to one connection arrive in order: once this one is here, the room's would have been.
                await connection.InvokeAsync("SendToUser", user, "me", "marker");
                var seen = await messages.WaitFor(m => m == "me: marker");
                return new { joined = seen.Contains("me: in the room"), afterLeaving = seen.Contains("me: after leaving") };
            });

            await scope.Check("users", async () =>
            {
                await connection.InvokeAsync("SendToUser", user, "me", "to my user");
                await connection.InvokeAsync("SendToUsers", new[] { user, "nobody" }, "me", "to my users");
                var seen = await messages.WaitFor(m => m == "me: to my users");
                return seen.Where(m => m.Contains("to my user")).ToList();
            });

            await scope.Check("others", async () =>
            {
                await connection.InvokeAsync("SendOthers", "me", "to the others");
                await connection.InvokeAsync("SendToUser", user, "me", "others marker");
                var seen = await messages.WaitFor(m => m == "me: others marker");
                return seen.Contains("me: to the others");
            });

            await scope.Check("errors", async () =>
            {
                var texts = new List<string>();
                async Task Try(Func<Task> call)
                {
                    try
                    {
                        await call();
                        texts.Add("(no error)");
                    }
                    catch (HubException e)
                    {
                        texts.Add($"HubException: {e.Message}");
                    }
                }
                await Try(() => connection.InvokeAsync("Fail", "it went wrong"));
                await Try(() => connection.InvokeAsync("Crash"));
                await Try(() => connection.InvokeAsync("NoSuchMethod"));
                await Try(() => connection.InvokeAsync("Echo"));
                await Try(() => connection.InvokeAsync("JoinRoom", 42));
                return texts;
            });

            await scope.Check("values", async () =>
            {
                await connection.InvokeAsync("SendValues");
                var received = await values.Task;
                return received.Select(Describe).ToList();
            });

            await scope.Check("server stream", async () =>
            {
                var items = new List<int>();
                var channel = await connection.StreamAsChannelAsync<int>("Counter", 5, 0, CancellationToken.None);
                while (await channel.WaitToReadAsync())
                {
                    while (channel.TryRead(out var item)) items.Add(item);
                }
                return items;
            });

            await scope.Check("server stream cancelled", async () =>
            {
                using var cancel = new CancellationTokenSource();
                var items = new List<int>();
                var channel = await connection.StreamAsChannelAsync<int>("Counter", 1000, 20, cancel.Token);
                string ending = "completed";
                try
                {
                    while (await channel.WaitToReadAsync())
                    {
                        while (channel.TryRead(out var item))
                        {
                            items.Add(item);
                            if (items.Count == 3) cancel.Cancel();
                        }
                    }
                }
                catch (OperationCanceledException)
                {
                    ending = "cancelled";
                }
                // The connection goes on: the next call is answered.
                var after = await connection.InvokeAsync<string>("Echo", "after the cancel");
                return new { first = items.Take(3), fewerThanAll = items.Count < 1000, ending, after };
            });

#if CLIENT_STREAMS
            await scope.Check("client stream", async () =>
            {
                var upload = Channel.CreateUnbounded<int>();
                var sum = connection.InvokeAsync<long>("Sum", upload.Reader);
                for (var i = 1; i <= 100; i++) await upload.Writer.WriteAsync(i);
                upload.Writer.Complete();
                return await sum;
            });

            await scope.Check("client stream as IAsyncEnumerable", async () =>
            {
                async IAsyncEnumerable<long> Numbers()
                {
                    for (long i = 0; i < 3; i++)
                    {
                        await Task.Yield();
                        yield return 2_000_000_000L + i;
                    }
                }
                return await connection.InvokeAsync<long>("Sum", Numbers());
            });

            await scope.Check("client stream cancelled", async () =>
            {
                var upload = Channel.CreateUnbounded<int>();
                var sum = connection.InvokeAsync<long>("Sum", upload.Reader);
                await upload.Writer.WriteAsync(1);
                upload.Writer.Complete(new OperationCanceledException("the upload was abandoned"));
                string outcome;
                try
                {
                    outcome = $"result {await sum}";
                }
                catch (HubException e)
                {
                    outcome = $"HubException: {e.Message}";
                }
                var after = await connection.InvokeAsync<string>("Echo", "after the abandoned upload");
                return new { outcome, after };
            });
#endif

#if CLIENT_RESULTS
            await scope.Check("client result", async () =>
            {
                var fromHub = await connection.InvokeAsync<string>("AskClient", connection.ConnectionId);
                using var http = new HttpClient();
                var fromOutside = await http.GetStringAsync($"{baseUrl}/ask/{connection.ConnectionId}");
                return new[] { fromHub, fromOutside };
            });
#endif
        }
        finally
        {
            await connection.DisposeAsync();
        }
    }

    /// <summary>A value as its .NET type and an invariant spelling of it.</summary>
    private static string Describe(object? value) => value switch
    {
        null => "null",
        byte[] bytes => $"Byte[] {Convert.ToHexString(bytes)}",
        DateTime time => $"DateTime {time.ToUniversalTime():yyyy-MM-ddTHH:mm:ss}Z {time.Kind}",
        double number => $"Double {number.ToString(System.Globalization.CultureInfo.InvariantCulture)}",
        Shape shape => $"Shape a={shape.a} b=[{string.Join(",", shape.b ?? Array.Empty<int>())}]",
        _ => $"{value.GetType().Name} {value}",
    };
}

/// <summary>What only our test server offers: the JWT hub, a socket to cut, a JavaScript client in a group.</summary>
internal static class Extras
{
    public static async Task Run(Scope scope, string baseUrl, HttpTransportType transport, string protocol)
    {
        var token = Environment.GetEnvironmentVariable("JWT");
        var secureUrl = Environment.GetEnvironmentVariable("SECURE_URL");
        await scope.Check("access token", async () =>
        {
            var connection = Connections.Build($"{secureUrl}/secure", transport, protocol, () => Task.FromResult(token));
            try
            {
                await connection.StartAsync();
                return await connection.InvokeAsync<string?>("WhoAmI");
            }
            finally
            {
                await connection.DisposeAsync();
            }
        });

        await scope.Check("no access token", async () =>
        {
            var connection = Connections.Build($"{secureUrl}/secure", transport, protocol);
            try
            {
                await connection.StartAsync();
                return "started";
            }
            catch (HttpRequestException e)
            {
                return e.Message.Contains("401") ? "refused with 401" : $"refused: {e.Message}";
            }
            finally
            {
                await connection.DisposeAsync();
            }
        });

        var mixedRoom = Environment.GetEnvironmentVariable("MIXED_ROOM");
        await scope.Check("mixed group", async () =>
        {
            var connection = Connections.Build($"{baseUrl}/chathub", transport, protocol);
            var messages = Connections.Messages(connection);
            try
            {
                await connection.StartAsync();
                await connection.InvokeAsync("JoinRoom", mixedRoom);
                var text = $"hello from .NET over {scope.Transport}/{protocol}";
                await connection.InvokeAsync("SendToRoom", mixedRoom, "dotnet", text);
                return (await messages.WaitFor(m => m == $"js: re: {text}")).Where(m => m.EndsWith(text)).ToList();
            }
            finally
            {
                await connection.DisposeAsync();
            }
        });

#if STATEFUL_RECONNECT
        if (transport != HttpTransportType.WebSockets) return;
        var proxyUrl = Environment.GetEnvironmentVariable("PROXY_URL");
        var cutUrl = Environment.GetEnvironmentVariable("CUT_URL");
        await scope.Check("stateful reconnect", async () =>
        {
            var connection = Connections.Build($"{proxyUrl}/chathub", transport, protocol, statefulReconnect: true);
            var messages = Connections.Messages(connection);
            var reconnecting = 0;
            connection.Reconnecting += _ =>
            {
                Interlocked.Increment(ref reconnecting);
                return Task.CompletedTask;
            };
            try
            {
                await connection.StartAsync();
                var id = connection.ConnectionId;
                var room = $"stateful-{Guid.NewGuid():N}";
                await connection.InvokeAsync("JoinRoom", room);
                for (var i = 1; i <= 10; i++) await connection.InvokeAsync("SendToRoom", room, "me", $"m{i}");
                // The server cuts the proxied socket, then sends three messages to the room while it is gone.
                int cutSockets;
                using (var http = new HttpClient())
                {
                    var answer = await http.PostAsync($"{cutUrl}?room={room}", null);
                    answer.EnsureSuccessStatusCode();
                    cutSockets = JsonDocument.Parse(await answer.Content.ReadAsStringAsync()).RootElement.GetProperty("cut").GetInt32();
                }
                // Sent while the transport is lost: the client keeps them for the new socket.
                for (var i = 11; i <= 20; i++) await connection.InvokeAsync("SendToRoom", room, "me", $"m{i}");
                var seen = await messages.WaitFor(m => m == "me: m20");
                return new
                {
                    cutSockets,
                    messages = seen,
                    sameConnection = connection.ConnectionId == id,
                    state = connection.State.ToString(),
                    reconnecting,
                };
            }
            finally
            {
                await connection.DisposeAsync();
            }
        });
#endif
    }
}

/// <summary>The low-level connection (Microsoft.AspNetCore.Http.Connections.Client) against a raw endpoint.</summary>
internal static class Raw
{
    public static async Task Run(Scope scope, string url, HttpTransportType transport)
    {
        await scope.Check("raw text", async () =>
        {
            var connection = new HttpConnection(new HttpConnectionOptions { Url = new Uri(url), Transports = transport }, NullLoggerFactory.Instance);
            try
            {
                await connection.StartAsync(TransferFormat.Text);
                var hasId = !string.IsNullOrEmpty(connection.ConnectionId);
                await connection.Transport!.Output.WriteAsync(Encoding.UTF8.GetBytes("héllo, raw ✓"));
                var echoed = Encoding.UTF8.GetString(await Read(connection, Encoding.UTF8.GetByteCount("héllo, raw ✓")));
                await connection.Transport.Output.WriteAsync(Encoding.UTF8.GetBytes("bye"));
                var ended = await ReadToEnd(connection);
                return new { hasId, echoed, ended };
            }
            finally
            {
                await connection.DisposeAsync();
            }
        });

        // Server-Sent Events carry text only.
        if (transport == HttpTransportType.ServerSentEvents) return;
        await scope.Check("raw binary", async () =>
        {
            var connection = new HttpConnection(new HttpConnectionOptions { Url = new Uri($"{url}?binary=true"), Transports = transport }, NullLoggerFactory.Instance);
            try
            {
                await connection.StartAsync(TransferFormat.Binary);
                await connection.Transport!.Output.WriteAsync(new byte[] { 0, 1, 0x1e, 0xfe, 0xff });
                var echoed = Convert.ToHexString(await Read(connection, 5));
                await connection.Transport.Output.WriteAsync(Encoding.UTF8.GetBytes("bye"));
                var ended = await ReadToEnd(connection);
                return new { echoed, ended };
            }
            finally
            {
                await connection.DisposeAsync();
            }
        });
    }

    /// <summary>Reads until <paramref name="count"/> bytes arrived.</summary>
    private static async Task<byte[]> Read(HttpConnection connection, int count)
    {
        var received = new List<byte>();
        while (received.Count < count)
        {
            var result = await connection.Transport!.Input.ReadAsync();
            received.AddRange(result.Buffer.ToArray());
            connection.Transport.Input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted) break;
        }
        return received.ToArray();
    }

    /// <summary>Reads until the server ends the connection; says what else arrived before.</summary>
    private static async Task<string> ReadToEnd(HttpConnection connection)
    {
        var extra = 0L;
        while (true)
        {
            var result = await connection.Transport!.Input.ReadAsync();
            extra += result.Buffer.Length;
            connection.Transport.Input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted) return extra == 0 ? "ended by the server" : $"ended by the server after {extra} more bytes";
        }
    }
}
