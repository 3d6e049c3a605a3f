#!/usr/bin/env bash
# Runs groups of make steps ("lanes") side by side: the steps of one lane one after
# another (`make -k`, so a failing step does not hide the next one's result), the lanes
# concurrently. Most test steps wait on containers, not on the CPU, so lanes that share
# nothing finish in about the time of the longest one.
#
#   scripts/lanes.sh [--nice LANE]... LANE=STEP,STEP... [LANE=STEP...]...
#
# Each lane's output goes to target/test-logs/LANE.log and is printed whole when the lane
# ends, so the logs of different lanes never interleave. While lanes run, a line every
# minute says which are still running. Exit status: 0 when every lane passed, else 1
# after a summary naming the failed lanes. `--nice LANE` runs that lane at low CPU
# priority (a compile-only lane, so the tests' engines get the CPU first).
#
# Lanes must not share mutable state: give steps that install into the same venv or
# node_modules, or that restart a daemon, to one lane (see the Makefile's TEST_LANES).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
logs=$root/target/test-logs
make=${MAKE:-make}

die() {
    echo "lanes: $*" >&2
    exit 2
}

declare -a names=() steps=()
declare -A niced=()
while (($#)); do
    case $1 in
    --nice)
        [[ $# -ge 2 ]] || die "--nice needs a lane name"
        niced[$2]=1
        shift 2
        ;;
    *=*)
        names+=("${1%%=*}")
        steps+=("${1#*=}")
        shift
        ;;
    *) die "not a lane: '$1' (expected NAME=STEP,STEP...)" ;;
    esac
done
((${#names[@]})) || die "no lanes given (expected NAME=STEP,STEP...)"
for name in "${!niced[@]}"; do
    [[ " ${names[*]} " == *" $name "* ]] || die "--nice $name: no lane of that name"
done

mkdir -p "$logs"
declare -A pid_of=() started=() status=() took=()
for i in "${!names[@]}"; do
    name=${names[$i]}
    IFS=, read -r -a goals <<<"${steps[$i]}"
    log=$logs/$name.log
    prefix=()
    [[ -n ${niced[$name]:-} ]] && prefix=(nice -n 15)
    echo "lanes: starting $name: ${goals[*]} (log: target/test-logs/$name.log)"
    # SKIP_SETUP: `make test` ran set-up once before the lanes; running it again from
    # several lanes at once would race to start the same daemons.
    "${prefix[@]}" "$make" --no-print-directory -k -C "$root" SKIP_SETUP=1 "${goals[@]}" \
        </dev/null >"$log" 2>&1 &
    pid_of[$name]=$!
    started[$name]=$SECONDS
done

minutes() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

running=${#names[@]}
last_tick=$SECONDS
while ((running)); do
    for name in "${names[@]}"; do
        [[ -z ${status[$name]:-} ]] || continue
        pid=${pid_of[$name]}
        kill -0 "$pid" 2>/dev/null && continue
        rc=0
        wait "$pid" || rc=$?
        took[$name]=$((SECONDS - started[$name]))
        status[$name]=$([[ $rc == 0 ]] && echo passed || echo "FAILED (exit $rc)")
        running=$((running - 1))
        echo
        echo "===== lane $name: ${status[$name]} after $(minutes "${took[$name]}"); its log follows ====="
        cat "$logs/$name.log"
        echo "===== end of lane $name ====="
    done
    if ((running && SECONDS - last_tick >= 60)); then
        last_tick=$SECONDS
        busy=()
        for name in "${names[@]}"; do
            [[ -n ${status[$name]:-} ]] || busy+=("$name ($(minutes $((SECONDS - started[$name]))))")
        done
        echo "lanes: still running: ${busy[*]}"
    fi
    ((running)) && sleep 1
done

echo
failed=0
for name in "${names[@]}"; do
    echo "lanes: $name ${status[$name]} in $(minutes "${took[$name]}")"
    [[ ${status[$name]} == passed ]] || failed=1
done
if ((failed)); then
    echo "lanes: a lane failed; its log is above and in target/test-logs/" >&2
    exit 1
fi
