# Sourced by the benchmark scripts: makes a box look busy for a while.
#
# start_load PROCS CONNS WORKDIR: starts PROCS sleeping processes and CONNS loopback TCP
# connections (two sockets each) held open by python3 holders, appending every pid to
# the caller's `pids` array (kill them by pid when done), and returns once all the
# connections are up. One process may hold only RLIMIT_NOFILE descriptors (20,000 on
# the development VM, and root may lack CAP_SYS_RESOURCE to raise it), so the
# connections are spread over holders of at most 4,000 each. Everything stops by itself
# after 10 minutes anyway.
start_load() {
    local procs=$1 conns=$2 work=$3 per_holder=4000 holders h n
    for _ in $(seq "$procs"); do sleep 600 & pids+=($!); done
    holders=$(( (conns + per_holder - 1) / per_holder ))
    for h in $(seq "$holders"); do
        n=$(( conns - (h - 1) * per_holder )); [ "$n" -gt "$per_holder" ] && n=$per_holder
        python3 - "$n" >"$work/conns.$h.log" 2>&1 <<'PY' &
import resource, socket, sys, time
n = int(sys.argv[1])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 2 * n + 100), hard))
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(4096)
keep = []
for _ in range(n):
    c = socket.create_connection(srv.getsockname()); s, _ = srv.accept(); keep += [c, s]
print("ready", len(keep), flush=True)
time.sleep(600)
PY
        pids+=($!)
    done
    local ready=0
    for _ in $(seq 240); do
        ready=$(cat "$work"/conns.*.log 2>/dev/null | grep -c ready || true)
        [ "$ready" -eq "$holders" ] && break
        sleep 0.5
    done
    if [ "$ready" -ne "$holders" ]; then
        echo "socket load did not start:" >&2; cat "$work"/conns.*.log >&2; return 1
    fi
    echo "load: $(ls /proc | grep -c '^[0-9]') processes, $(ss -tanH | wc -l) TCP sockets" >&2
}
