#!/usr/bin/env bash
# Three-node Docker test of a shoal cluster (issue 4, item 8): builds the
# static binary and a FROM-scratch image, starts deploy/compose.yaml (three
# nodes in Pebble mode with mutual TLS, a token and encrypted gossip, a
# worker per node) under a unique project name, and while a workload is
# submitted through the CLI in containers on the cluster's network:
#
#   1. kills node1's container (docker kill), restarts it 6 s later;
#   2. disconnects node2 from the network for 12 s (partition), reconnects it;
#   3. restarts node1, node2, node3 one after the other (rolling restart).
#
# After 1+2 and again after 3 it checks that every acknowledged task is done
# and that no task ran again after its result was durable: each audit task
# returns a unique execution id, the workers journal every execution with
# its start and end time, and an execution of a payload that started more
# than SLACK_NS (1 s) after the end of the execution whose output is the durable
# result is a double run. (Runs before that, cut off by a kill or a
# partition, are at-least-once and allowed; they are counted.)
#
# Needs docker and docker-compose (v1 or v2). Everything it creates carries
# the project name and is removed on exit; logs are kept in
# /tmp/shoal-cluster-logs-<run> when it fails (or with KEEP_LOGS=1).
set -euo pipefail

cd "$(dirname "$0")/.."
RUN=${RUN:-$(date +%s)-$$}
PROJECT="shoaltest${RUN//[^a-z0-9]/}"
IMAGE="shoal-test:$PROJECT"
WORK=$(mktemp -d "/tmp/shoal-cluster-$RUN.XXXX")
LOGS="/tmp/shoal-cluster-logs-$RUN"
SLACK_NS=${SLACK_NS:-1000000000}
TASK_SLEEP=${TASK_SLEEP:-100ms}
DEADLINE=$((SECONDS + ${TIMEOUT:-360}))

if docker compose version >/dev/null 2>&1; then
	COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then
	COMPOSE=(docker-compose)
else
	echo "test-cluster: neither 'docker compose' nor docker-compose found" >&2
	exit 1
fi

log() { echo "[$(date +%T)] $*"; }
fail() {
	echo "test-cluster: FAIL: $*" >&2
	exit 1
}

export SHOAL_IMAGE=$IMAGE SHOAL_CERTS=$WORK/certs SHOAL_JOURNAL=$WORK/journal
SHOAL_TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
SHOAL_GOSSIP_KEY=$(head -c 32 /dev/urandom | base64)
export SHOAL_TOKEN SHOAL_GOSSIP_KEY
# The published port of node1 on loopback: a free one, so runs don't clash.
SHOAL_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)))
export SHOAL_PORT
# A private /24 for this run (nodes have fixed addresses in it), one no
# other docker network uses.
used=$(docker network ls -q | xargs -r docker network inspect --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}' 2>/dev/null || true)
for _ in $(seq 50); do
	SHOAL_SUBNET="10.$((100 + RANDOM % 100)).$((RANDOM % 250))"
	case " $used " in *" $SHOAL_SUBNET.0/"*) continue ;; esac
	break
done
export SHOAL_SUBNET
compose() { "${COMPOSE[@]}" -f deploy/compose.yaml -p "$PROJECT" "$@"; }
NET="${PROJECT}_shoal"
ctr() { echo "${PROJECT}_$1_1"; } # compose v1 names; v2 is resolved below

SUB=
cleanup() {
	local rc=$?
	set +e
	[ -n "$SUB" ] && kill "$SUB" 2>/dev/null && wait "$SUB" 2>/dev/null
	docker ps -aq --filter "name=${PROJECT}_cli_" | xargs -r docker rm -f >/dev/null 2>&1
	if [ $rc -ne 0 ] || [ "${KEEP_LOGS:-}" = 1 ]; then
		mkdir -p "$LOGS"
		compose logs --no-color -t >"$LOGS/compose.log" 2>&1
		cp -r "$WORK/journal" "$WORK"/*.txt "$LOGS/" 2>/dev/null
		echo "test-cluster: logs kept in $LOGS"
	fi
	compose down -v --remove-orphans -t 5 >/dev/null 2>&1
	docker ps -aq --filter "name=${PROJECT}" | xargs -r docker rm -f >/dev/null 2>&1
	docker volume ls -q --filter "name=${PROJECT}_" | xargs -r docker volume rm -f >/dev/null 2>&1
	docker network rm "$NET" >/dev/null 2>&1
	docker image rm -f "$IMAGE" >/dev/null 2>&1
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

left() { echo $((DEADLINE - SECONDS)); }
check_time() { [ "$(left)" -gt 0 ] || fail "over the time limit (TIMEOUT=${TIMEOUT:-360} s)"; }

# The audit must catch what it is for: a run after a durable result, and a
# task not done. (A checker that cannot fail proves nothing.)
selftest() {
	local j="$WORK/st-journal" o="$WORK/st-out"
	printf '1\t1\taudit\t"a"\ttrue\t100\t200\t"x1"\n1\t2\taudit\t"a"\ttrue\t9000000000\t9000000100\t"x2"\n' >"$j"
	printf 'ID STATE ATTEMPTS ALIAS OUTPUT\n1    done   1   -   x1\n' >"$o"
	! awk -F'\t' -v slack=1000 -v want=1 -f deploy/check-runs.awk "$j" "$o" >/dev/null || fail "checker self-test: a run after the durable result passed"
	printf 'ID STATE ATTEMPTS ALIAS OUTPUT\n1    done   1   -   x2\n' >"$o"
	awk -F'\t' -v slack=1000 -v want=1 -f deploy/check-runs.awk "$j" "$o" >/dev/null || fail "checker self-test: an earlier cut-off run failed"
	printf 'ID STATE ATTEMPTS ALIAS OUTPUT\n1    queued 0   -\n' >"$o"
	! awk -F'\t' -v slack=1000 -v want=1 -f deploy/check-runs.awk "$j" "$o" >/dev/null || fail "checker self-test: a queued task passed"
}
mkdir -p "$WORK"
selftest

log "building the static binary and image $IMAGE"
mkdir -p "$WORK/bin" "$WORK/journal"
CGO_ENABLED=0 go build -o "$WORK/bin/shoal" ./cmd/shoal
docker build -q -f deploy/Dockerfile -t "$IMAGE" "$WORK/bin" >"$WORK/build.txt" 2>&1 || {
	cat "$WORK/build.txt"
	fail "docker build"
}
"$WORK/bin/shoal" dev-certs --out "$WORK/certs" --host node1,node2,node3 >/dev/null
chmod 0755 "$WORK/certs" "$WORK/journal"

log "starting three nodes and three workers (project $PROJECT)"
compose up -d >/dev/null 2>&1 || {
	compose up -d
	fail "compose up"
}
# Container names: compose v1 uses _, v2 uses -.
if ! docker inspect "$(ctr node1)" >/dev/null 2>&1; then
	ctr() { echo "${PROJECT}-$1-1"; }
fi

# shoal runs a CLI command in a throwaway container on the cluster network,
# as a TLS client with the token. timeout (LIMIT s, default 60) bounds it.
shoal() {
	timeout "${LIMIT:-60}" docker run --rm -i --name "${PROJECT}_cli_$RANDOM$RANDOM" --network "$NET" -v "$WORK/certs:/certs:ro" \
		-e SHOAL_TOKEN -e SHOAL_TLS_CERT=/certs/client.pem -e SHOAL_TLS_KEY=/certs/client-key.pem \
		-e SHOAL_TLS_CA=/certs/ca.pem "$IMAGE" "$@"
}

# members NODE prints how many members NODE sees (0 when it does not answer).
members() {
	shoal status --node "$1:7070" --json 2>/dev/null | grep -c '"gossip"' || true
}

wait_members() {
	local who
	for who in "$@"; do
		until [ "$(members "$who")" = 3 ]; do
			check_time
			sleep 1
		done
	done
}

log "waiting for every node to see three members"
wait_members node1 node2 node3
log "cluster up ($(left) s left)"

# submitter PHASE: until $WORK/stop-PHASE exists, submits batches of 60
# audit tasks (in 3 requests of 20), each to the next node in turn,
# recording the acknowledged ids. A request refused or cut off (a node
# down, an owner unreachable: the router waits up to 30 s, the client 20 s)
# is not acknowledged; that is expected during disruptions.
submitter() {
	local phase=$1 r=0 node i
	until [ -e "$WORK/stop-$phase" ]; do
		node="node$((r % 3 + 1))"
		for ((i = 0; i < 60; i++)); do echo "$TASK_SLEEP:$phase-$r-$i"; done >"$WORK/in-$phase-$r"
		LIMIT=20 shoal submit --node "$node:7070" --type audit --stdin --batch 20 <"$WORK/in-$phase-$r" \
			>"$WORK/ids-$phase-$r" 2>"$WORK/err-$phase-$r" || true
		r=$((r + 1))
		sleep 0.3
	done
}

# check PHASES...: wait for every acknowledged id, then audit the journals.
check() {
	local ids="$WORK/acked.txt" out="$WORK/outcomes.txt"
	cat "$WORK"/ids-* | grep -E '^[0-9]+$' | sort -u >"$ids" || true
	local n
	n=$(wc -l <"$ids")
	[ "$n" -gt 0 ] || fail "no task was acknowledged"
	log "waiting for $n acknowledged tasks"
	local tries=0
	until shoal wait --node node3:7070 --timeout 50s <"$ids" >"$out" 2>"$WORK/wait-err.txt"; do
		tries=$((tries + 1))
		check_time
		[ $tries -lt 6 ] || fail "acknowledged tasks did not finish: $(tail -n 3 "$WORK/wait-err.txt")"
		log "wait: $(tail -n 1 "$WORK/wait-err.txt"); again"
	done
	cat "$WORK"/journal/*.log >"$WORK/journal.txt"
	awk -F'\t' -v slack="$SLACK_NS" -v want="$n" -f deploy/check-runs.awk "$WORK/journal.txt" "$out" | tee "$WORK/check.txt"
	[ "${PIPESTATUS[0]}" = 0 ] || fail "audit found problems (above)"
}

log "phase 1: workload with a killed node and a partition"
submitter p1 &
SUB=$!
sleep 4
log "docker kill node1"
docker kill "$(ctr node1)" >/dev/null
sleep 6
log "docker start node1"
docker start "$(ctr node1)" >/dev/null
sleep 3
log "partition: disconnect node2"
docker network disconnect "$NET" "$(ctr node2)"
sleep 12
log "reconnect node2"
docker network connect --ip "$SHOAL_SUBNET.12" --alias node2 "$NET" "$(ctr node2)"
sleep 3
touch "$WORK/stop-p1"
wait "$SUB"
SUB=
wait_members node1 node2 node3
check

log "phase 2: rolling restart with work in flight ($(left) s left)"
# A backlog first (about 6 s of work for the three workers), so every node
# holds queued and running tasks when it is restarted.
for ((i = 0; i < 600; i++)); do echo "250ms:p2-burst-$i"; done >"$WORK/in-p2-burst"
shoal submit --node node1:7070 --type audit --stdin --batch 200 <"$WORK/in-p2-burst" >"$WORK/ids-p2-burst" ||
	fail "the backlog was not acknowledged"
submitter p2 &
SUB=$!
sleep 1
for n in node1 node2 node3; do
	log "restart $n"
	docker restart -t 10 "$(ctr "$n")" >/dev/null
	wait_members node1 node2 node3
done
sleep 2
touch "$WORK/stop-p2"
wait "$SUB"
SUB=
check
log "PASS in $SECONDS s"
