using Microsoft.AspNetCore.SignalR;

namespace WebAPI;

/// <summary>
/// Takes a connection's user id from the <c>user</c> query parameter of its connect request (no authentication),
/// so tests can route to users with <c>?user=alice</c>.
/// </summary>
public sealed class QueryUserIdProvider : IUserIdProvider
{
    public string? GetUserId(HubConnectionContext connection)
    {
        var user = connection.GetHttpContext()?.Request.Query["user"].ToString();
        return string.IsNullOrEmpty(user) ? null : user;
    }
}
