package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoalrt/shoal/messages"
)

// printPlacement prints the unplaceable tasks, the executors' backlogs and
// the cloud executors (docs/supervision.md, "Cloud spill, placement and
// planning").
func printPlacement(tw *tabwriter.Writer, st *messages.Status) {
	backlog := false
	for _, e := range st.Executors {
		backlog = backlog || e.BacklogMillis > 0 || e.Cloud
	}
	if backlog {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "EXECUTOR\tBACKLOG/SLOT\tCLOUD")
		for _, e := range st.Executors {
			fmt.Fprintf(tw, "%s\t%v\t%v\n", e.ID, time.Duration(e.BacklogMillis)*time.Millisecond, e.Cloud)
		}
	}
	if len(st.Unplaceable) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "UNPLACEABLE TASKS\tTYPE\tWAITING SINCE\tNO REGISTERED EXECUTOR SATISFIES\tREFUSED BY")
		for _, u := range st.Unplaceable {
			fmt.Fprintf(tw, "%d\t%s\t%v ago\t%s\t%s\n", u.Tasks, u.Type, time.Since(time.UnixMilli(u.SinceUnixMs)).Round(time.Second), u.Requirements, u.Refused)
		}
	}
	if len(st.Cloud) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "CLOUD EXECUTOR\tSTATE\tSINCE\tREASON")
		for _, c := range st.Cloud {
			fmt.Fprintf(tw, "%s\t%s\t%v ago\t%s\n", c.ID, c.State, time.Since(time.UnixMilli(c.Since)).Round(time.Second), c.Reason)
		}
	}
}

// printCloudCounters prints the cloud_* and unplaceable counters, if any.
func printCloudCounters(tw *tabwriter.Writer, counters map[string]int64) {
	for _, k := range []string{"unplaceable", "cloud_provisioned", "cloud_for_unplaceable", "cloud_for_saturation", "cloud_released", "cloud_failed", "cloud_refused", "cloud_active"} {
		if v, ok := counters[k]; ok && (v != 0 || strings.HasPrefix(k, "cloud_")) {
			fmt.Fprintf(tw, "%s\t%d\n", k, v)
		}
	}
}
