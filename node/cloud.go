package node

import (
	"context"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shoalrt/shoal/actors/cloud"
	"github.com/shoalrt/shoal/messages"
)

// nameCloud is the cloud actor (spawned when Config.CloudProvider is set).
const nameCloud = "shoal-cloud"

func (n *Node) cloudPID() *actor.PID {
	if n.cfg.CloudProvider == nil {
		return nil
	}
	return actor.NewPID(n.system.Address(), nameCloud)
}

func (n *Node) spawnCloud(spawn func(*actor.Props, string) error) error {
	if n.cfg.CloudProvider == nil {
		return nil
	}
	return spawn(cloud.Props(n.cfg.Cloud, cloud.Deps{Dispatch: n.pids.Dispatch, Provider: n.cfg.CloudProvider,
		Logger: n.cfg.Logger, Now: n.cfg.Now, Prefix: n.cfg.Name}), nameCloud)
}

// CloudStatus is the cloud actor's view (ok false when spill is off).
func (n *Node) CloudStatus(ctx context.Context) (cloud.Status, bool) {
	pid := n.cloudPID()
	if pid == nil {
		return cloud.Status{}, false
	}
	res, err := n.system.Root.RequestFuture(pid, cloud.StatusRequest{}, timeoutOf(ctx)).Result()
	st, ok := res.(cloud.Status)
	return st, err == nil && ok
}

// addCloudStatus adds the cloud executors and cloud_* counters to st.
func (n *Node) addCloudStatus(ctx context.Context, st *messages.Status) {
	cs, ok := n.CloudStatus(ctx)
	if !ok {
		return
	}
	st.Cloud = cs.Executors
	st.Counters["cloud_provisioned"] = cs.Counters.Provisioned
	st.Counters["cloud_released"] = cs.Counters.Released
	st.Counters["cloud_failed"] = cs.Counters.Failed
	st.Counters["cloud_refused"] = cs.Counters.Refused
	st.Counters["cloud_for_unplaceable"] = cs.Counters.ForUnplaceable
	st.Counters["cloud_for_saturation"] = cs.Counters.ForSaturation
	st.Counters["cloud_active"] = int64(cs.Active)
}
