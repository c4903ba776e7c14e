using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.SignalR;

namespace WebAPI;

/// <summary>
/// The chat hub of samples/chat (chat-hub.ts), method for method, so a client sees the same hub on either kind of
/// server. Its full name, WebAPI.ChatHub, names its Redis channels: the fastify-signalr servers of the fleet run
/// with CHAT_HUB_NAME=WebAPI.ChatHub to share them.
/// </summary>
public class ChatHub(ILogger<ChatHub> logger) : Hub
{
    /// <summary>Logged so an operator (and the fleet test) can tell which server holds a connection.</summary>
    public override Task OnConnectedAsync()
    {
        logger.LogInformation("connection {ConnectionId} started", Context.ConnectionId);
        return Task.CompletedTask;
    }

    public Task SendMessage(string user, string message) =>
        Clients.All.SendAsync("ReceiveMessage", user, message);

    public Task JoinRoom(string room) => Groups.AddToGroupAsync(Context.ConnectionId, room);

    public Task LeaveRoom(string room) => Groups.RemoveFromGroupAsync(Context.ConnectionId, room);

    public Task SendToRoom(string room, string user, string message) =>
        Clients.Group(room).SendAsync("ReceiveMessage", user, message);

    /// <summary>Returns its argument unchanged. <c>object?</c> binds any JSON value (a JsonElement, or null).</summary>
    public object? Echo(object? value) => value;

    public Task SendOthers(string user, string message) =>
        Clients.Others.SendAsync("ReceiveMessage", user, message);

    public Task SendAllExcept(string[] ids, string user, string message) =>
        Clients.AllExcept(ids).SendAsync("ReceiveMessage", user, message);

    public Task SendToConnection(string id, string user, string message) =>
        Clients.Client(id).SendAsync("ReceiveMessage", user, message);

    public Task SendToConnections(string[] ids, string user, string message) =>
        Clients.Clients(ids).SendAsync("ReceiveMessage", user, message);

    public Task SendToRooms(string[] rooms, string user, string message) =>
        Clients.Groups(rooms).SendAsync("ReceiveMessage", user, message);

    public Task SendRoomExcept(string room, string[] ids, string user, string message) =>
        Clients.GroupExcept(room, ids).SendAsync("ReceiveMessage", user, message);

    public Task SendOthersInRoom(string room, string user, string message) =>
        Clients.OthersInGroup(room).SendAsync("ReceiveMessage", user, message);

    public Task SendToUser(string userId, string user, string message) =>
        Clients.User(userId).SendAsync("ReceiveMessage", user, message);

    public Task SendToUsers(string[] userIds, string user, string message) =>
        Clients.Users(userIds).SendAsync("ReceiveMessage", user, message);

    public Task AddToRoom(string connectionId, string room) => Groups.AddToGroupAsync(connectionId, room);

    public Task RemoveFromRoom(string connectionId, string room) => Groups.RemoveFromGroupAsync(connectionId, room);

    /// <summary>Asks another (or the same) connection for a client result and returns it.</summary>
    public Task<string> AskClient(string connectionId) =>
        Clients.Client(connectionId).InvokeAsync<string>("GetAnswer", "question", Context.ConnectionAborted);

    /// <summary>Streams 0 … count-1, waiting <paramref name="delayMs"/> after each item, until cancelled.</summary>
    public async IAsyncEnumerable<int> Counter(
        int count, int delayMs, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        for (var i = 0; i < count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return i;
            await Task.Delay(delayMs, cancellationToken);
        }
    }

    /// <summary>Adds up a client-to-server stream.</summary>
    public async Task<long> Sum(IAsyncEnumerable<long> numbers)
    {
        long total = 0;
        await foreach (var n in numbers)
        {
            total += n;
        }
        return total;
    }

    /// <summary>A HubException: its message reaches the client.</summary>
    public void Fail(string message) => throw new HubException(message);

    /// <summary>An ordinary exception: its message reaches the client only with detailed errors on.</summary>
    public void Crash() => throw new InvalidOperationException("Crash() failed with a secret detail");

    public string? WhoAmI() => Context.UserIdentifier;

    /// <summary>Everyone ← Values(…): one value of each kind a payload can hold.</summary>
    public Task SendValues() =>
        Clients.All.SendCoreAsync("Values", new object?[]
        {
            42, -1, 300, 70000, 5000000000L, 3.5, true, null, "héllo ✓",
            new byte[] { 0, 1, 254, 255 },
            new DateTime(2020, 1, 2, 3, 4, 5, DateTimeKind.Utc),
            new Dictionary<string, object?> { ["a"] = 1, ["b"] = new[] { 1, 2 } },
        });
}
