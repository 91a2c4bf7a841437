package metrics

import (
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
)

// The metrics, named shoal_<subsystem>_<name>_<unit> (STYLE.md); the
// catalogue with meanings is docs/metrics.md, and a test checks the two
// agree.

// fromCounter is a metric read straight from a node.Status counter.
type fromCounter struct {
	key  string // messages.Status.Counters key
	desc *prometheus.Desc
	typ  prometheus.ValueType
}

type descs struct {
	all          []*prometheus.Desc
	fromCounters []fromCounter

	nodeInfo, nodeReady, scrapeErrors                                *prometheus.Desc
	tasksDone, tasksDead, tasksCancelled, tasksDeduplicated          *prometheus.Desc
	queueDepth, classStandby, classPaused                            *prometheus.Desc
	executors, execSlots, execLeases, execRestarts                   *prometheus.Desc
	storeCommits, storeSyncs, storeBytes, commitLatency, syncLatency *prometheus.Desc
	members, partitions, forwarded, forwardFailed, forwardWaiting    *prometheus.Desc
	hostsReporting, hostRunning, hostCPU, hostMem, hostReportAge     *prometheus.Desc
	hostInflight, alerts                                             *prometheus.Desc
}

func newDescs() descs {
	var d descs
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		x := prometheus.NewDesc(name, help, labels, nil)
		d.all = append(d.all, x)
		return x
	}
	counter := func(key, name, help string) {
		d.fromCounters = append(d.fromCounters, fromCounter{key, desc(name, help), prometheus.CounterValue})
	}
	gauge := func(key, name, help string) {
		d.fromCounters = append(d.fromCounters, fromCounter{key, desc(name, help), prometheus.GaugeValue})
	}

	d.nodeInfo = desc("shoal_node_info", "Always 1; the node's name as a label.", "node")
	d.nodeReady = desc("shoal_node_ready", "1 when /readyz answers ready: store open, cluster joined.")
	d.scrapeErrors = desc("shoal_metrics_scrape_errors", "1 for each part of the node that did not answer this scrape.", "part")

	// Intake and pump.
	counter("accepted", "shoal_intake_accepted_tasks_total", "Tasks accepted (durable) by intake since the node started.")
	gauge("standby", "shoal_pump_standby_tasks", "Tasks waiting in the store for a queue place (standby).")
	gauge("unplaceable", "shoal_queue_unplaceable_tasks", "Tasks set aside because no executor satisfies their requirements.")
	d.queueDepth = desc("shoal_queue_depth_tasks", "Tasks queued in memory, by priority class.", "class")
	d.classStandby = desc("shoal_pump_class_standby_tasks", "Standby tasks, by priority class.", "class")
	d.classPaused = desc("shoal_queue_class_paused", "1 when the class is paused.", "class")

	// Durable task totals (the store's, surviving a restart on Pebble).
	d.tasksDone = desc("shoal_tasks_done_total", "Tasks finished done (durable on Pebble: survives restarts).")
	d.tasksDead = desc("shoal_tasks_dead_total", "Tasks dead after their last attempt (durable on Pebble).")
	d.tasksCancelled = desc("shoal_tasks_cancelled_total", "Tasks cancelled (durable on Pebble).")
	d.tasksDeduplicated = desc("shoal_tasks_deduplicated_total", "Submissions answered by an earlier task's result (durable on Pebble).")

	// Dispatch.
	counter("granted", "shoal_dispatch_grants_total", "Leases granted to executors since the node started.")
	gauge("leased", "shoal_dispatch_leases", "Leases held by executors now.")
	counter("retried", "shoal_dispatch_retries_total", "Failed attempts queued again.")
	counter("expired", "shoal_dispatch_lease_expiries_total", "Leases that expired (executor silent past the TTL).")
	counter("stale", "shoal_dispatch_stale_completions_total", "Completions of leases no longer held (fenced).")
	counter("evicted", "shoal_dispatch_evictions_total", "Executors evicted (connection lost).")
	counter("slept", "shoal_dispatch_sleeps_total", "Executors put to sleep (idle).")
	counter("woken", "shoal_dispatch_wakes_total", "Executors woken for work.")
	counter("timed_out", "shoal_dispatch_run_timeouts_total", "Attempts that overran their run timeout.")

	// Executors and supervision.
	d.executors = desc("shoal_dispatch_executors", "Executors, by state (active, sleeping, draining, failed).", "state")
	d.execSlots = desc("shoal_dispatch_executor_slots", "An executor's slots.", "executor")
	d.execLeases = desc("shoal_dispatch_executor_leases", "An executor's leases now.", "executor")
	d.execRestarts = desc("shoal_supervisor_executor_restarts_total", "Restarts of an executor process the node launched.", "executor")
	counter("alerts", "shoal_supervisor_alerts_total", "Alerts the supervisor raised.")
	counter("restarts", "shoal_supervisor_restarts_total", "Executor processes the supervisor restarted.")
	d.alerts = desc("shoal_supervisor_recent_alerts", "Alerts in the supervisor's recent list.")

	// Store.
	d.storeCommits = desc("shoal_store_commits_total", "Write requests committed (each a batch of records).", "store")
	d.storeSyncs = desc("shoal_store_syncs_total", "Group commits (one fsync or one PostgreSQL commit each).", "store")
	d.storeBytes = desc("shoal_store_written_bytes_total", "Encoded bytes written by group commits (Pebble).", "store")
	d.commitLatency = desc("shoal_store_commit_duration_seconds", "Time from the committer taking a group to the group being durable, per group.")
	d.syncLatency = desc("shoal_store_fsync_duration_seconds", "Time of the write that makes a group durable (Pebble: synced WAL write and fsync; PostgreSQL: the round trip with the server's WAL flush), per group.")

	// Flows.
	gauge("flows_running", "shoal_flows_running", "Flows running now.")
	gauge("flows_waiting", "shoal_flows_waiting", "Flows not started yet (waiting for a place).")
	counter("flows_done", "shoal_flows_done_total", "Flows finished done since the node started.")
	counter("flows_failed", "shoal_flows_failed_total", "Flows failed.")
	counter("flows_cancelled", "shoal_flows_cancelled_total", "Flows cancelled.")
	counter("flow_steps_submitted", "shoal_flows_steps_submitted_total", "Flow steps submitted as tasks.")
	counter("flow_steps_run", "shoal_flows_steps_run_total", "Flow steps that ran.")
	counter("flow_steps_shared", "shoal_flows_steps_shared_total", "Flow steps answered by a shared earlier result.")

	// Cluster.
	d.members = desc("shoal_cluster_members", "Live cluster members (cluster mode).")
	d.partitions = desc("shoal_cluster_partitions", "Partitions a member owns.", "member")
	d.forwarded = desc("shoal_cluster_forwarded_requests_total", "Requests (parts of Submit, Wait, Cancel) forwarded to another member.", "router")
	d.forwardFailed = desc("shoal_cluster_forward_failures_total", "Forwards that failed (no answer, member left, unreachable).", "router")
	d.forwardWaiting = desc("shoal_cluster_forwards_waiting", "Forwards awaiting an answer now.", "router")
	counter("stolen", "shoal_cluster_stolen_tasks_total", "Tasks leased from loaded peers (work stealing).")

	// Cloud.
	counter("cloud_provisioned", "shoal_cloud_provisioned_executors_total", "Cloud executors provisioned.")
	counter("cloud_released", "shoal_cloud_released_executors_total", "Cloud executors released.")
	counter("cloud_failed", "shoal_cloud_provision_failures_total", "Cloud executors that failed (never registered in time, or vanished).")
	counter("cloud_refused", "shoal_cloud_provision_refusals_total", "Cloud spills refused (no provider instance could run the tasks).")
	counter("cloud_for_unplaceable", "shoal_cloud_provisions_unplaceable_total", "Provisions for tasks no executor could run.")
	counter("cloud_for_saturation", "shoal_cloud_provisions_saturation_total", "Provisions for saturated executors.")
	gauge("cloud_active", "shoal_cloud_active_executors", "Cloud executors running now.")

	// Hosts.
	d.hostInflight = desc("shoal_hosts_instructions_inflight", "Tasks the host bridge holds as instructions in the table now.")
	d.hostsReporting = desc("shoal_hosts_reporting", "Hosts with a status row in the host table.")
	d.hostRunning = desc("shoal_hosts_instructions_running", "Instructions a host's agent runs, as last reported.", "host")
	d.hostCPU = desc("shoal_hosts_cpu_ratio", "A host's CPU busy fraction, as last reported.", "host")
	d.hostMem = desc("shoal_hosts_memory_ratio", "A host's memory in use fraction, as last reported.", "host")
	d.hostReportAge = desc("shoal_hosts_report_age_seconds", "Time since a host's last report.", "host")
	return d
}

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

// Names lists the metrics a Collector describes (the docs test checks them
// against docs/metrics.md).
func Names() []string {
	var out []string
	for _, d := range newDescs().all {
		if m := descName.FindStringSubmatch(d.String()); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}
