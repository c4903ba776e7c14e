// Drives the ASP.NET SignalR 2.x .NET client against a server's 2.x endpoint and prints what it observed, one JSON
// object per line: {"transport","check","value"} — or "error" in place of "value" when the check threw.
//
// Settings, from the environment:
//   SERVER_URL   where the client connects (a TCP proxy in front of the server); the hubs are at SERVER_URL/signalr
//   CONTROL_URL  the server itself: POST CONTROL_URL/control/drop cuts the proxy's connections, sends
//                "numbered" 2…5 to every client while they are away, and lets them back
//   TRANSPORTS   comma list of webSockets, serverSentEvents, longPolling (all when unset)
//
// The server's ChatHub has a Core client in group "mixed" that answers "re: <message>" to each group message.
using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNet.SignalR.Client;
using Microsoft.AspNet.SignalR.Client.Transports;

var serverUrl = Environment.GetEnvironmentVariable("SERVER_URL")!.TrimEnd('/');
var controlUrl = Environment.GetEnvironmentVariable("CONTROL_URL")!.TrimEnd('/');
var transports = (Environment.GetEnvironmentVariable("TRANSPORTS") ?? "webSockets,serverSentEvents,longPolling")
    .Split(',', StringSplitOptions.RemoveEmptyEntries);
using var control = new HttpClient();

void Line(string transport, string check, object? value = null, string? error = null) =>
    Console.WriteLine(JsonSerializer.Serialize(error is null ? (object)new { transport, check, value } : new { transport, check, error }));

async Task Check(string transport, string check, Func<Task<object?>> run)
{
    try
    {
        Line(transport, check, await run());
    }
    catch (Exception e)
    {
        Line(transport, check, error: (e is AggregateException a ? a.InnerException! : e).Message);
    }
}

async Task<bool> Until(Func<bool> condition, int timeoutMs = 20_000)
{
    var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
    while (!condition())
    {
        if (DateTime.UtcNow > deadline) return false;
        await Task.Delay(20);
    }
    return true;
}

foreach (var transportName in transports)
{
    var connection = new HubConnection($"{serverUrl}/signalr", useDefaultUrl: false);
    var chat = connection.CreateHubProxy("ChatHub");
    var messages = new ConcurrentQueue<string>();
    var numbers = new ConcurrentQueue<int>();
    var reconnects = 0;
    chat.On<string, string>("addMessage", (name, message) => messages.Enqueue($"{name}: {message}"));
    chat.On<string, string>("groupMessage", (group, message) => messages.Enqueue($"{group}: {message}"));
    chat.On<int>("numbered", n => numbers.Enqueue(n));
    connection.Reconnected += () => Interlocked.Increment(ref reconnects);
    IClientTransport transport = transportName switch
    {
        "webSockets" => new WebSocketTransport(),
        "serverSentEvents" => new ServerSentEventsTransport(),
        "longPolling" => new LongPollingTransport(),
        _ => throw new ArgumentException(transportName),
    };
    await Check(transportName, "start", async () =>
    {
        await connection.Start(transport);
        return connection.Transport.Name;
    });
    if (connection.State != ConnectionState.Connected) continue;

    await Check(transportName, "add", async () => await chat.Invoke<int>("Add", 20, 22));
    await Check(transportName, "refuse", async () => { await chat.Invoke("Refuse", "not today"); return "no error"; });
    await Check(transportName, "crash", async () => { await chat.Invoke("Crash"); return "no error"; });
    await Check(transportName, "state", async () =>
    {
        chat["userName"] = "Dotnet";
        var first = await chat.Invoke<string>("Greet");
        var second = await chat.Invoke<string>("Greet");
        return new { first, second, calls = (int)chat["calls"] };
    });
    if (transportName == "webSockets")
    {
        // Over WebSockets progress and answer share the socket, so their order is the server's.
        await Check(transportName, "progress", async () =>
        {
            var seen = new ConcurrentQueue<int>();
            var result = await chat.Invoke<string, int>("CountTo", p => seen.Enqueue(p), 3);
            return new { result, progress = seen.ToArray() };
        });
    }
    await Check(transportName, "send", async () =>
    {
        await chat.Invoke("Send", "dotnet", $"hello over {transportName}");
        return await Until(() => messages.Contains($"dotnet: hello over {transportName}")) ? "received" : "not received";
    });
    await Check(transportName, "group", async () =>
    {
        var id = await chat.Invoke<string>("JoinGroup", "mixed");
        await chat.Invoke("SendToGroup", "mixed", $"from dotnet over {transportName}");
        var answered = await Until(() => messages.Contains($"mixed: re: from dotnet over {transportName}"));
        return new { joinedAs = id == connection.ConnectionId, answered };
    });
    await Check(transportName, "reconnect", async () =>
    {
        await chat.Invoke("JoinGroup", "kept");
        await chat.Invoke("Burst", 1);
        await Until(() => numbers.Contains(1));
        (await control.PostAsync($"{controlUrl}/control/drop", null)).EnsureSuccessStatusCode();
        var caughtUp = await Until(() => numbers.Contains(5));
        await chat.Invoke("SendToGroup", "kept", "after");
        var after = await Until(() => messages.Contains("kept: after"));
        return new { numbers = numbers.ToArray(), caughtUp, after, reconnected = reconnects > 0 };
    });
    connection.Stop();
}
Line("", "done", true);
