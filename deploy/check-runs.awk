# check-runs.awk: the audit of deploy/test-cluster.sh.
#
#   awk -F'\t' -v slack=NS -v want=N -f check-runs.awk JOURNAL OUTCOMES
#
# JOURNAL: the workers' --journal lines (tab-separated: id, attempt, type,
# "payload", ok, start-ns, end-ns, "output"). OUTCOMES: `shoal wait` output
# (ID STATE ATTEMPTS ALIAS OUTPUT) for the N acknowledged tasks, all of
# type audit (each execution returns a unique id).
#
# A task fails the audit when it is not done, when its output names no
# journaled execution, or when an execution of its payload started more
# than slack ns after the end of the execution whose output is the durable
# result (it ran again after it had finished). Earlier extra executions
# (cut off by a kill or a partition before their result was durable) are
# at least once, allowed, and counted. Exit status 1 on any problem.
FNR == NR {
	if (NF < 8 || $5 != "true") next
	out = substr($8, 2, length($8) - 2)
	pay = substr($4, 2, length($4) - 2)
	runs[pay]++
	start[pay, runs[pay]] = $6
	end_of[out] = $7
	pay_of[out] = pay
	next
}
{
	split($0, f, / +/)
	if (f[1] !~ /^[0-9]+$/) next
	seen++
	if (f[2] != "done") { printf "task %s is %s, not done\n", f[1], f[2]; bad++; next }
	if (!(f[5] in end_of)) { printf "task %s: output %s is no journaled execution\n", f[1], f[5]; bad++; next }
	p = pay_of[f[5]]
	e = end_of[f[5]]
	for (k = 1; k <= runs[p]; k++)
		if (start[p, k] > e + slack) {
			printf "payload %s ran again %.1f s after its durable result\n", p, (start[p, k] - e) / 1e9
			bad++
		}
	if (runs[p] > 1) extra += runs[p] - 1
}
END {
	if (seen != want) { printf "%d outcomes for %d acknowledged tasks\n", seen, want; bad++ }
	printf "checked %d tasks: %d problems; %d extra runs before a durable result (at least once)\n", seen, bad, extra
	exit (bad > 0)
}
