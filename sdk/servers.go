package sdk

import (
	"context"
	"fmt"

	"github.com/shoalrt/shoal/messages"
)

// Servers asks the node for the servers view (S3.4, docs/servers.md):
// every executor's resources joined per server, across the cluster.
func (c *Client) Servers(ctx context.Context) (*messages.Servers, error) {
	return c.servers(ctx, &messages.ServersRequest{})
}

// ServerHistory asks the node for one server's history (Servers.History,
// oldest first). An unknown server is a CodeNotFound *messages.Error.
func (c *Client) ServerHistory(ctx context.Context, id string) (*messages.Servers, error) {
	return c.servers(ctx, &messages.ServersRequest{History: id})
}

func (c *Client) servers(ctx context.Context, req *messages.ServersRequest) (*messages.Servers, error) {
	res, err := c.ask(ctx, messages.ActorServers, req)
	if err != nil {
		return nil, err
	}
	v, ok := res.(*messages.Servers)
	if !ok {
		return nil, fmt.Errorf("sdk: servers: unexpected answer %T", res)
	}
	if v.Err != nil {
		return nil, v.Err
	}
	return v, nil
}
