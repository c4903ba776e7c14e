using Microsoft.AspNetCore.SignalR;

namespace WebAPI;

/// <summary>
/// Takes a connection's user id from the <c>user</c> query parameter of its connect request (no authentication),
/// as the chat sample of fastify-signalr does: a sample without login. Real apps take it from their authentication.
/// </summary>
public sealed class QueryUserIdProvider : IUserIdProvider
{
    public string? GetUserId(HubConnectionContext connection)
    {
        var user = connection.GetHttpContext()?.Request.Query["user"].ToString();
        return string.IsNullOrEmpty(user) ? null : user;
    }
}
