#!/usr/bin/env bash
# Regenerate the packet captures in samples/ with real DICOM peers.
#
# Usage: samples/make_samples.sh [SCENARIO...]
#   SCENARIO is one or more of: echo store store_mtu1500 find move get
#   reject_called_ae reject_context abort pynetdicom pcapng
#   (default: all of them, in that order).
#
# Environment:
#   OUT=DIR       where the captures go (default: the directory of this script)
#   KEEP_WORK=1   keep the temporary work directory (logs, received files)
#   PEER_TIMEOUT  seconds each peer command may run (default 60)
#   NO_NETNS=1    do not use a network namespace (test the fallback)
#
# Needs root for `ip netns` (and for tcpdump): every peer then runs inside a
# private network namespace whose loopback carries nothing but our traffic.
# Without `ip netns` the script falls back to the host loopback with a
# port-specific capture filter and skips the MTU 1500 veth scenario.
#
# Peers: DCMTK 3.6.7 (absolute /usr/bin paths: the bare names on PATH may be
# pynetdicom's Python apps of the same name), Orthanc 1.10.x, pynetdicom 3.0.
# Capture: tcpdump (dumpcap for the .pcapng).  Check: tshark's DICOM dissector.
#
# The captures are not byte-identical from run to run (timestamps, ephemeral
# ports, TCP sequence numbers), but the DICOM objects and the DICOM exchanges
# are the same every time.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${OUT:-$HERE}
PEER_TIMEOUT=${PEER_TIMEOUT:-60}
PY=${PYTHON:-python3}

DCMTK=/usr/bin
ORTHANC_BIN=/usr/sbin/Orthanc

# Ports.  DCMTK storescp and friends listen on 11112, Orthanc on 4242, the
# C-MOVE destination (a second storescp) on 11113, pynetdicom on 11114.
P_SCP=11112
P_MOVE_DEST=11113
P_PYNET=11114
P_ORTHANC=4242

# The veth pair of the MTU 1500 scenario: client side A, server side B.
VETH_A_IP=10.77.0.1
VETH_B_IP=10.77.0.2
VETH_MTU=1500

ALL_SCENARIOS=(echo store store_mtu1500 find move get reject_called_ae
               reject_context abort pynetdicom pcapng)

NS=""                      # main namespace ("" = host, fallback mode)
NS_A="" NS_B=""            # the two ends of the veth pair
WORK=""                    # temporary work directory
PIDS=()                    # background processes still to stop
ORTHANC_PID=""
HOST=127.0.0.1

log()  { printf '==> %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die()  { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# process and namespace plumbing
# ---------------------------------------------------------------------------

# Command prefix that runs a command in namespace $1 ("" = host): sets RUN.
# An array, not a function, so that `"${RUN[@]}" cmd &` gives the PID of cmd
# itself (`ip netns exec` execs cmd).
ns_prefix() {
    if [[ -n $1 ]]; then RUN=(ip netns exec "$1"); else RUN=(); fi
}

# Run a command in the main namespace (or on the host in fallback mode).
in_ns() {
    if [[ -n $NS ]]; then ip netns exec "$NS" "$@"; else "$@"; fi
}

# Run a peer command: in the main namespace, bounded by PEER_TIMEOUT.
peer() { in_ns timeout "$PEER_TIMEOUT" "$@"; }

# Start a long-running external command in the background, logging to $1;
# sets BG_PID (the command's own PID: never pass a shell function here).
start_bg() {
    local logfile=$1; shift
    "$@" >"$logfile" 2>&1 &
    BG_PID=$!
    PIDS+=("$BG_PID")
}

# Stop one background process by PID with signal $2 (default TERM); give it
# 15 s, then KILL.  Never fails.
stop_pid() {
    local pid=$1 sig=${2:-TERM} i
    if kill -0 "$pid" 2>/dev/null; then
        kill -"$sig" "$pid" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            warn "PID $pid ignored SIG$sig for 15 s, sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    local keep=() p
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# Wait (at most 15 s) until something listens on TCP port $2 in namespace $1
# ("" = main namespace).  Uses ss, so it sends no packets.
wait_listen() {
    local port=$2 i
    ns_prefix "$1"
    for ((i = 0; i < 150; i++)); do
        if [[ -n $("${RUN[@]}" ss -Hltn "sport = :$port") ]]; then return 0; fi
        sleep 0.1
    done
    die "nothing listens on port $port after 15 s"
}

# Wait (at most 15 s) until file $1 contains the regex $2.
wait_for_line() {
    local file=$1 re=$2 i
    for ((i = 0; i < 150; i++)); do
        grep -q -- "$re" "$file" 2>/dev/null && return 0
        sleep 0.1
    done
    cat "$file" >&2 || true
    die "no '$re' in $file after 15 s"
}

cleanup() {
    local rc=$? pid ns
    set +e
    for pid in "${PIDS[@]}"; do stop_pid "$pid" TERM; done
    for ns in "$NS" "$NS_A" "$NS_B"; do
        [[ -n $ns ]] && ip netns del "$ns" 2>/dev/null
    done
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ $rc -ne 0 || -n ${KEEP_WORK:-} ]]; then
            log "work directory kept: $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}

setup_namespace() {
    if [[ -z ${NO_NETNS:-} && $(id -u) -eq 0 ]] && ip netns add "dicomtap-samples-$$" 2>/dev/null; then
        NS="dicomtap-samples-$$"
        ip netns exec "$NS" ip link set lo up
        log "running in network namespace $NS (only our traffic on its loopback)"
    else
        NS=""
        warn "ip netns not available (not root?): falling back to the host" \
             "loopback $HOST; captures are filtered by port but may hold" \
             "other local traffic on those ports"
    fi
}

# ---------------------------------------------------------------------------
# capturing
# ---------------------------------------------------------------------------

CAP_PID="" CAP_FILE="" CAP_ERR=""

# capture_start NS IFACE FILE FILTER: tcpdump on IFACE in namespace NS.
# -U writes each packet at once; --immediate-mode makes libpcap hand over
# each packet at once (without it, on the 6.x kernel this was made on,
# tcpdump kept the packets in its TPACKET_V3 ring and wrote none of them
# before SIGINT); -B 32768 (KiB): with immediate mode and the default 2 MiB
# buffer the kernel dropped packets of the 300 KB store at MTU 1500; -Z root
# keeps the file owned by us instead of the tcpdump user.
capture_start() {
    local iface=$2 file=$3 filter=$4
    ns_prefix "$1"
    CAP_FILE=$file CAP_ERR=$file.tcpdump.log
    rm -f "$CAP_FILE"
    start_bg "$CAP_ERR" "${RUN[@]}" tcpdump -U --immediate-mode -B 32768 -Z root \
        -i "$iface" -w "$CAP_FILE" "$filter"
    CAP_PID=$BG_PID
    wait_for_line "$CAP_ERR" "listening on"
}

# capture_start_dumpcap NS IFACE FILE FILTER: same with dumpcap (pcapng).
capture_start_dumpcap() {
    local iface=$2 file=$3 filter=$4
    ns_prefix "$1"
    CAP_FILE=$file CAP_ERR=$file.dumpcap.log
    rm -f "$CAP_FILE"
    start_bg "$CAP_ERR" "${RUN[@]}" dumpcap -q -i "$iface" -f "$filter" -w "$CAP_FILE"
    CAP_PID=$BG_PID
    wait_for_line "$CAP_ERR" "Capturing on"
}

declare -A CAP_PORTS=()    # capture written by this run -> its DICOM ports
CAP_ORDER=()               # the captures written by this run, in order

# capture_stop NAME "PORT...": stop the running capture with SIGINT and copy
# it to $OUT/NAME.
capture_stop() {
    local name=$1
    CAP_PORTS[$name]=$2
    CAP_ORDER+=("$name")
    sleep 0.5   # let the last FIN/ACKs through
    stop_pid "$CAP_PID" INT
    CAP_PID=""
    [[ -s $CAP_FILE ]] || die "capture $CAP_FILE is empty"
    # A capture with holes is useless as a sample: fail on kernel drops
    # (tcpdump's statistics) and on TCP segments missing from the file.
    if grep -Eq '^[1-9][0-9]* packets dropped by kernel' "$CAP_ERR"; then
        die "$name: tcpdump reports drops: $(grep dropped "$CAP_ERR" | tr '\n' ' ')"
    fi
    if [[ $HAVE_TSHARK -eq 1 ]]; then
        local holes
        holes=$(tshark -r "$CAP_FILE" -Y 'tcp.analysis.lost_segment or tcp.analysis.ack_lost_segment' \
                2>/dev/null | wc -l)
        ((holes == 0)) || die "$name: $holes frames around lost TCP segments"
    fi
    install -m 0644 "$CAP_FILE" "$OUT/$name"
    log "wrote $OUT/$name ($(stat -c %s "$OUT/$name") bytes)"
}

# ---------------------------------------------------------------------------
# checking with tshark
# ---------------------------------------------------------------------------

HAVE_TSHARK=0
command -v tshark >/dev/null && HAVE_TSHARK=1

# Decode-as arguments for the DICOM ports.
decode_args() {
    local p
    for p in "$@"; do printf -- '-d\ntcp.port==%s,dicom\n' "$p"; done
}

# summary FILE PORT...: frame number and Info column of every DICOM frame.
summary() {
    local file=$1; shift
    [[ $HAVE_TSHARK -eq 1 ]] || return 0
    local -a d
    mapfile -t d < <(decode_args "$@")
    tshark -r "$file" "${d[@]}" -Y dicom -T fields -e frame.number -e _ws.col.Info \
        2>/dev/null
}

# expect FILE "PORT..." MIN REGEX: at least MIN lines of tshark's verbose
# DICOM decode match REGEX (extended, case-insensitive).
expect() {
    local file=$1 ports=$2 min=$3 re=$4 n
    [[ $HAVE_TSHARK -eq 1 ]] || return 0
    local -a d
    # shellcheck disable=SC2086  # ports is a list
    mapfile -t d < <(decode_args $ports)
    n=$(tshark -r "$file" "${d[@]}" -Y dicom -V 2>/dev/null | grep -Eic -- "$re" || true)
    if ((n < min)); then
        die "$(basename "$file"): expected >= $min lines matching /$re/, got $n"
    fi
    printf '    ok: %3d x /%s/\n' "$n" "$re" >&2
}

# ---------------------------------------------------------------------------
# DICOM objects and a storescp helper
# ---------------------------------------------------------------------------

make_objects() {
    OBJ=$WORK/objects
    "$PY" "$HERE/make_objects.py" "$OBJ" >"$WORK/make_objects.log"
    CT=("$OBJ/ct1.dcm" "$OBJ/ct2.dcm" "$OBJ/ct3.dcm")
    MR=$OBJ/mr1.dcm
    BIG=$OBJ/big1.dcm
    STUDY1_UID=$("$DCMTK/dcmdump" -q -s +P 0020,000d "$OBJ/ct1.dcm" |
                 sed -n 's/.*\[\(.*\)\].*/\1/p')
    [[ -n $STUDY1_UID ]] || die "could not read StudyInstanceUID of ct1.dcm"
}

# start_storescp DIR PORT [OPTION...]: DCMTK storescp (AE STORESCP) storing
# into DIR/recv, in the main namespace; sets SCP_PID.
start_storescp() {
    local dir=$1 port=$2; shift 2
    mkdir -p "$dir/recv"
    ns_prefix "$NS"
    start_bg "$dir/storescp-$port.log" "${RUN[@]}" "$DCMTK/storescp" -v -aet STORESCP \
        -od "$dir/recv" "$@" "$port"
    SCP_PID=$BG_PID
    wait_listen "$NS" "$port"
}

# check_received DIR N: storescp wrote N files into DIR that dcmdump reads.
check_received() {
    local dir=$1 n=$2 f count=0
    for f in "$dir"/*; do
        [[ -f $f ]] || continue
        "$DCMTK/dcmdump" -q "$f" >/dev/null || die "dcmdump cannot read $f"
        count=$((count + 1))
    done
    ((count == n)) || die "expected $n received files in $dir, found $count"
    log "    $count objects received and readable in $dir"
}

# ---------------------------------------------------------------------------
# scenarios (one capture each)
# ---------------------------------------------------------------------------

# 1. C-ECHO, DCMTK echoscu -> storescp, normal release.
scenario_echo() {
    local d=$WORK/echo; mkdir -p "$d"
    start_storescp "$d" "$P_SCP"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_SCP"
    peer "$DCMTK/echoscu" -v -aet ECHOSCU -aec STORESCP "$HOST" "$P_SCP"
    capture_stop echo.pcap "$P_SCP"
    stop_pid "$SCP_PID"
    expect "$OUT/echo.pcap" "$P_SCP" 1 'A-ASSOCIATE request'
    expect "$OUT/echo.pcap" "$P_SCP" 1 'C-ECHO-RSP'
    expect "$OUT/echo.pcap" "$P_SCP" 1 'A-RELEASE response'
}

# Two storescu runs against one storescp, so that one association carries
# Explicit VR LE and the other Implicit VR LE:
#  - CT x3 + the ~300 KB CT: +C combines Explicit LE, Explicit BE and Implicit
#    LE in one context per SOP class (-xe: Explicit LE first); storescp
#    (default --prefer-uncompr) picks Explicit VR LE.  The big object's data
#    set spans 19 P-DATA-TF PDUs at the default max PDU of 16384.
#  - MR (stored Implicit VR LE): -xi proposes Implicit VR LE only.
store_runs() {
    local host=$1 run=$2
    $run "$DCMTK/storescu" -v -R +C -xe -aet STORESCU -aec STORESCP \
        "$host" "$P_SCP" "${CT[@]}" "$BIG"
    $run "$DCMTK/storescu" -v -R -xi -aet STORESCU -aec STORESCP \
        "$host" "$P_SCP" "$MR"
}

store_expectations() {
    local f=$1
    expect "$f" "$P_SCP" 5 'C-STORE-RQ'
    expect "$f" "$P_SCP" 5 'C-STORE-RSP'
    expect "$f" "$P_SCP" 1 'Presentation Context: ID .*, Accept, Explicit VR Little Endian'
    expect "$f" "$P_SCP" 1 'Presentation Context: ID .*, Accept, Implicit VR Little Endian'
    expect "$f" "$P_SCP" 2 'A-RELEASE response'
}

# 2. C-STORE of 5 objects on the namespace loopback (MTU 65536).
scenario_store() {
    local d=$WORK/store; mkdir -p "$d"
    start_storescp "$d" "$P_SCP"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_SCP"
    store_runs "$HOST" peer
    capture_stop store.pcap "$P_SCP"
    stop_pid "$SCP_PID"
    check_received "$d/recv" 5
    store_expectations "$OUT/store.pcap"
}

# 3. The same C-STOREs across a veth pair at MTU 1500.  GSO is limited to one
# segment per packet (gso_max_segs 1) because, with veth's default
# offloads, tcpdump sees 64 KB "super packets" instead of the ~1448-byte
# TCP segments a real Ethernet carries.  Fixed MAC addresses keep the
# Ethernet headers the same from run to run.
veth_in_a() { ip netns exec "$NS_A" timeout "$PEER_TIMEOUT" "$@"; }
scenario_store_mtu1500() {
    if [[ -z $NS ]]; then
        warn "store_mtu1500 needs ip netns and veth: skipped"
        return 0
    fi
    local d=$WORK/store_mtu1500; mkdir -p "$d/recv"
    NS_A=dicomtap-samples-$$-a NS_B=dicomtap-samples-$$-b
    ip netns add "$NS_A"
    ip netns add "$NS_B"
    ip link add veth-a netns "$NS_A" type veth peer name veth-b netns "$NS_B"
    ip -n "$NS_A" addr add "$VETH_A_IP/24" dev veth-a
    ip -n "$NS_B" addr add "$VETH_B_IP/24" dev veth-b
    ip -n "$NS_A" link set veth-a address 02:00:0a:4d:00:01 mtu "$VETH_MTU" \
        gso_max_segs 1 gso_max_size "$VETH_MTU" up
    ip -n "$NS_B" link set veth-b address 02:00:0a:4d:00:02 mtu "$VETH_MTU" \
        gso_max_segs 1 gso_max_size "$VETH_MTU" up
    ip -n "$NS_A" link set lo up
    ip -n "$NS_B" link set lo up

    start_bg "$d/storescp.log" ip netns exec "$NS_B" "$DCMTK/storescp" -v \
        -aet STORESCP -od "$d/recv" "$P_SCP"
    local scp=$BG_PID
    wait_listen "$NS_B" "$P_SCP"
    capture_start "$NS_B" veth-b "$d/cap.pcap" "tcp port $P_SCP"
    store_runs "$VETH_B_IP" veth_in_a
    capture_stop store_mtu1500.pcap "$P_SCP"
    stop_pid "$scp"
    ip netns del "$NS_A"; NS_A=""
    ip netns del "$NS_B"; NS_B=""
    check_received "$d/recv" 5
    store_expectations "$OUT/store_mtu1500.pcap"
    if [[ $HAVE_TSHARK -eq 1 ]]; then
        local max
        max=$(tshark -r "$OUT/store_mtu1500.pcap" -T fields -e frame.len 2>/dev/null |
              sort -n | tail -1)
        ((max <= VETH_MTU + 14)) || die "store_mtu1500: frame of $max bytes > MTU"
        log "    largest frame $max bytes"
    fi
}

# --- Orthanc (find, move, get, reject_called_ae share one instance) --------

# Orthanc with its own config and storage in $WORK (never the system
# service).  DicomCheckCalledAet makes it reject unknown called AE titles
# (scenario reject_called_ae); the SCUs are declared as modalities because
# C-FIND/C-MOVE/C-GET from unknown AEs are refused by default.
# DicomAssociationCloseDelay 0: release the C-MOVE sub-association at once
# instead of keeping it open for 5 s.
start_orthanc() {
    [[ -n $ORTHANC_PID ]] && return 0
    local d=$WORK/orthanc; mkdir -p "$d/db"
    cat >"$d/orthanc.json" <<EOF
{
  "Name" : "dicomtap-samples",
  "StorageDirectory" : "$d/db",
  "IndexDirectory" : "$d/db",
  "Plugins" : [ ],
  "HttpServerEnabled" : false,
  "DicomServerEnabled" : true,
  "DicomAet" : "ORTHANC",
  "DicomPort" : $P_ORTHANC,
  "DicomCheckCalledAet" : true,
  "DicomAlwaysAllowEcho" : true,
  "DicomAlwaysAllowStore" : true,
  "DicomCheckModalityHost" : false,
  "DicomModalities" : {
    "STORESCP" : [ "STORESCP", "$HOST", $P_MOVE_DEST ],
    "FINDSCU"  : [ "FINDSCU",  "$HOST", 11190 ],  // SCUs: ports never used
    "MOVESCU"  : [ "MOVESCU",  "$HOST", 11191 ],
    "GETSCU"   : [ "GETSCU",   "$HOST", 11192 ]
  },
  "SynchronousCMove" : true,
  "DicomAssociationCloseDelay" : 0,
  "DicomScuTimeout" : 10,
  "DicomScpTimeout" : 30,
  "ConcurrentJobs" : 1,
  "SaveJobs" : false,
  "StorageCompression" : false
}
EOF
    ns_prefix "$NS"
    start_bg "$d/orthanc.log" "${RUN[@]}" "$ORTHANC_BIN" --verbose "$d/orthanc.json"
    ORTHANC_PID=$BG_PID
    wait_listen "$NS" "$P_ORTHANC"
    # Load the three patients/studies outside any capture.
    peer "$DCMTK/storescu" -R -aet LOADER -aec ORTHANC "$HOST" "$P_ORTHANC" \
        "${CT[@]}" "$MR" "$BIG" >"$d/load.log" 2>&1 ||
        { cat "$d/load.log" >&2; die "could not load the objects into Orthanc"; }
    log "Orthanc up (PID $ORTHANC_PID), 5 instances in 3 studies loaded"
}

stop_orthanc() {
    [[ -n $ORTHANC_PID ]] || return 0
    stop_pid "$ORTHANC_PID"
    ORTHANC_PID=""
}

# 4. C-FIND against Orthanc: Study Root at STUDY level (3 matches) and
# Patient Root at PATIENT level (3 matches), two associations.
scenario_find() {
    start_orthanc
    local d=$WORK/find; mkdir -p "$d"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_ORTHANC"
    peer "$DCMTK/findscu" -v -S -aet FINDSCU -aec ORTHANC \
        -k QueryRetrieveLevel=STUDY -k 'PatientName=*' -k PatientID \
        -k StudyInstanceUID -k StudyDate -k StudyDescription -k ModalitiesInStudy \
        -k NumberOfStudyRelatedInstances "$HOST" "$P_ORTHANC"
    peer "$DCMTK/findscu" -v -P -aet FINDSCU -aec ORTHANC \
        -k QueryRetrieveLevel=PATIENT -k 'PatientName=*' -k PatientID \
        -k PatientBirthDate -k PatientSex "$HOST" "$P_ORTHANC"
    capture_stop find_orthanc.pcap "$P_ORTHANC"
    # 3 pending responses (status 0xff00) per query, then a final success.
    expect "$OUT/find_orthanc.pcap" "$P_ORTHANC" 6 '^DICOM, C-FIND-RSP-DATA'
    expect "$OUT/find_orthanc.pcap" "$P_ORTHANC" 6 '\(0000,0900\).*\(0xff00\)'
    expect "$OUT/find_orthanc.pcap" "$P_ORTHANC" 2 '^DICOM, C-FIND-RSP ID=.*\(Success\)'
}

# 5. C-MOVE of study 1 (3 CT) from Orthanc to a storescp declared in
# Orthanc's DicomModalities as STORESCP; the capture holds the C-MOVE
# association (port 4242) and Orthanc's C-STORE sub-association (port 11113).
scenario_move() {
    start_orthanc
    local d=$WORK/move; mkdir -p "$d"
    start_storescp "$d" "$P_MOVE_DEST"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_ORTHANC or tcp port $P_MOVE_DEST"
    peer "$DCMTK/movescu" -v -S -aet MOVESCU -aec ORTHANC -aem STORESCP \
        -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$STUDY1_UID" \
        "$HOST" "$P_ORTHANC"
    capture_stop move_orthanc.pcap "$P_ORTHANC $P_MOVE_DEST"
    stop_pid "$SCP_PID"
    check_received "$d/recv" 3
    local f=$OUT/move_orthanc.pcap ports="$P_ORTHANC $P_MOVE_DEST"
    expect "$f" "$ports" 1 'C-MOVE-RQ'
    expect "$f" "$ports" 3 'C-STORE-RQ'
    expect "$f" "$ports" 1 'Move Originator Application Entity Title'
    expect "$f" "$ports" 1 'C-MOVE-RSP.*Success'
}

# 6. C-GET of study 1 from Orthanc: the C-STOREs come back on the same
# association; getscu proposes the storage contexts with SCP role selection.
scenario_get() {
    start_orthanc
    local d=$WORK/get; mkdir -p "$d/recv"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_ORTHANC"
    peer "$DCMTK/getscu" -v -S -aet GETSCU -aec ORTHANC -od "$d/recv" \
        -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$STUDY1_UID" \
        "$HOST" "$P_ORTHANC"
    capture_stop get_orthanc.pcap "$P_ORTHANC"
    check_received "$d/recv" 3
    local f=$OUT/get_orthanc.pcap
    expect "$f" "$P_ORTHANC" 1 'C-GET-RQ'
    expect "$f" "$P_ORTHANC" 3 'C-STORE-RQ'
    expect "$f" "$P_ORTHANC" 1 'Role Selection'
    expect "$f" "$P_ORTHANC" 1 'C-GET-RSP.*Success'
}

# 7. Association rejected: echoscu calls Orthanc (DicomCheckCalledAet true)
# with the wrong called AE title -> A-ASSOCIATE-RJ, result 1 (permanent),
# source 1 (service user), reason 7 (called AE title not recognized).
scenario_reject_called_ae() {
    start_orthanc
    local d=$WORK/reject_called_ae; mkdir -p "$d"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_ORTHANC"
    if peer "$DCMTK/echoscu" -v -aet ECHOSCU -aec WRONGAE "$HOST" "$P_ORTHANC"; then
        die "echoscu with a wrong called AE title was accepted"
    fi
    capture_stop reject_called_ae.pcap "$P_ORTHANC"
    expect "$OUT/reject_called_ae.pcap" "$P_ORTHANC" 1 'A-ASSOCIATE reject'
    expect "$OUT/reject_called_ae.pcap" "$P_ORTHANC" 1 'Reason: .*called AE title not recognized'
}

# 8. Presentation contexts rejected.  storescp runs with a config profile that
# accepts only Verification and CT Image Storage, Explicit or Implicit VR
# Little Endian (see write_scp_config).  storescu -xs proposes two contexts
# per SOP class: one with JPEG Lossless only, one with the uncompressed
# transfer syntaxes.  The A-ASSOCIATE-AC then holds result 4 (CT / JPEG
# Lossless: transfer syntaxes not supported), 0 (CT / uncompressed: Explicit
# VR LE) and 3 twice (MR: abstract syntax not supported).  storescu sends the
# CT and cannot send the MR (-nh: it carries on).
write_scp_config() {
    cat >"$1" <<'EOF'
# storescp profile for dicomtap's reject_context sample
[[TransferSyntaxes]]
[LittleEndianOnly]
TransferSyntax1 = LittleEndianExplicit
TransferSyntax2 = LittleEndianImplicit

[[PresentationContexts]]
[CTOnly]
PresentationContext1 = VerificationSOPClass\LittleEndianOnly
PresentationContext2 = CTImageStorage\LittleEndianOnly

[[Profiles]]
[CTOnly]
PresentationContexts = CTOnly
EOF
}

scenario_reject_context() {
    local d=$WORK/reject_context; mkdir -p "$d"
    write_scp_config "$d/storescp.cfg"
    start_storescp "$d" "$P_SCP" -xf "$d/storescp.cfg" CTOnly
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_SCP"
    # storescu 3.6.7 with -nh logs "No presentation context for: (MR)" and
    # exits 0; do not depend on its exit status.
    peer "$DCMTK/storescu" -v -R -xs -nh -aet STORESCU -aec STORESCP \
        "$HOST" "$P_SCP" "${CT[0]}" "$MR" || true
    capture_stop reject_context.pcap "$P_SCP"
    stop_pid "$SCP_PID"
    check_received "$d/recv" 1
    local f=$OUT/reject_context.pcap
    expect "$f" "$P_SCP" 1 'Result: Accept \(0x0\)'
    expect "$f" "$P_SCP" 1 'Result: Abstract Syntax Unsupported \(0x3\)'
    expect "$f" "$P_SCP" 1 'Result: Transfer Syntax Unsupported \(0x4\)'
    expect "$f" "$P_SCP" 1 'C-STORE-RSP'
}

# 9. A-ABORT, both directions, against storescp --abort-after:
#  - echoscu --abort: the requestor aborts after a successful C-ECHO
#    (A-ABORT source 0, service user);
#  - storescu: storescp aborts after receiving the C-STORE-RQ and its data
#    set, before answering (A-ABORT from the acceptor).
scenario_abort() {
    local d=$WORK/abort; mkdir -p "$d"
    start_storescp "$d" "$P_SCP" --abort-after
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_SCP"
    peer "$DCMTK/echoscu" -v --abort -aet ECHOSCU -aec STORESCP "$HOST" "$P_SCP"
    if peer "$DCMTK/storescu" -v -R -aet STORESCU -aec STORESCP \
            "$HOST" "$P_SCP" "${CT[0]}"; then
        warn "storescu exited 0 although storescp aborted"
    fi
    capture_stop abort.pcap "$P_SCP"
    stop_pid "$SCP_PID"
    expect "$OUT/abort.pcap" "$P_SCP" 2 '^ *PDU Type: ABORT|A-ABORT'
    expect "$OUT/abort.pcap" "$P_SCP" 1 'C-STORE-RQ'
}

# 10. A second implementation: pynetdicom SCU -> pynetdicom SCP.  One
# association: C-ECHO, C-STORE of a CT (Explicit VR LE) and of the MR
# (Implicit VR LE), normal release.  pynetdicom uses message ID 1 for every
# request by default, so all three requests have ID 1.
scenario_pynetdicom() {
    local d=$WORK/pynetdicom; mkdir -p "$d/recv"
    ns_prefix "$NS"
    start_bg "$d/scp.log" "${RUN[@]}" "$PY" "$HERE/pynetdicom_scp.py" \
        "$HOST" "$P_PYNET" PYSCP "$d/recv"
    local scp=$BG_PID
    wait_listen "$NS" "$P_PYNET"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_PYNET"
    peer "$PY" "$HERE/pynetdicom_scu.py" "$HOST" "$P_PYNET" PYSCP "${CT[0]}" "$MR"
    capture_stop pynetdicom.pcap "$P_PYNET"
    stop_pid "$scp"
    check_received "$d/recv" 2
    local f=$OUT/pynetdicom.pcap
    expect "$f" "$P_PYNET" 1 'C-ECHO-RSP'
    expect "$f" "$P_PYNET" 2 'C-STORE-RSP'
    expect "$f" "$P_PYNET" 1 'A-RELEASE response'
    expect "$f" "$P_PYNET" 1 'Accept, Explicit VR Little Endian, CT Image Storage'
    expect "$f" "$P_PYNET" 1 'Accept, Implicit VR Little Endian.*, MR Image Storage'
}

# 11. pcapng written by dumpcap: storescu -> storescp with storescp's max
# receive PDU at 4096, so each 9.5 KB CT data set is sent as 3 P-DATA-TF
# PDUs (storescu +C: one context per SOP class with all uncompressed TS).
scenario_pcapng() {
    local d=$WORK/pcapng; mkdir -p "$d"
    start_storescp "$d" "$P_SCP" -pdu 4096
    capture_start_dumpcap "$NS" lo "$d/cap.pcapng" "tcp port $P_SCP"
    peer "$DCMTK/storescu" -v -R +C -aet STORESCU -aec STORESCP \
        "$HOST" "$P_SCP" "${CT[@]}"
    capture_stop store_pdu4096.pcapng "$P_SCP"
    stop_pid "$SCP_PID"
    check_received "$d/recv" 3
    expect "$OUT/store_pdu4096.pcapng" "$P_SCP" 3 'C-STORE-RSP'
}

# ---------------------------------------------------------------------------

main() {
    local scenarios=("$@") s
    ((${#scenarios[@]})) || scenarios=("${ALL_SCENARIOS[@]}")
    for s in "${scenarios[@]}"; do
        declare -F "scenario_$s" >/dev/null || die "unknown scenario '$s'"
    done
    local tool
    for tool in "$DCMTK/storescu" "$DCMTK/storescp" "$DCMTK/echoscu" \
                "$DCMTK/findscu" "$DCMTK/movescu" "$DCMTK/getscu" "$DCMTK/dcmdump" \
                "$ORTHANC_BIN" tcpdump dumpcap timeout ss; do
        command -v "$tool" >/dev/null || die "missing $tool"
    done
    [[ $HAVE_TSHARK -eq 1 ]] || warn "tshark not found: captures are not checked"

    trap cleanup EXIT
    trap 'exit 130' INT TERM
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/dicomtap-samples.XXXXXX")
    mkdir -p "$OUT"
    setup_namespace
    make_objects

    for s in "${scenarios[@]}"; do
        log "scenario $s"
        "scenario_$s"
    done
    stop_orthanc

    # What tshark's DICOM dissector sees in each capture written by this run.
    local name ports
    if [[ $HAVE_TSHARK -eq 1 ]]; then
        for name in "${CAP_ORDER[@]}"; do
            ports=${CAP_PORTS[$name]}
            printf '\n%s: %s frames, DICOM on tcp port %s\n' "$name" \
                "$(capinfos -c -M "$OUT/$name" | sed -n 's/.*packets: *//p')" "$ports"
            # shellcheck disable=SC2086  # ports is a list
            summary "$OUT/$name" $ports | sed 's/^/    /'
        done
    fi
    log "done: ${#CAP_ORDER[@]} captures in $OUT"
    # The samples are committed: keep them small.
    local total=0 f
    for f in "$OUT"/*.pcap "$OUT"/*.pcapng; do
        [[ -f $f ]] && total=$((total + $(stat -c %s "$f")))
    done
    ((total <= 5 * 1024 * 1024)) || warn "captures in $OUT total $total bytes (> 5 MiB)"
    log "captures in $OUT: $total bytes in all"
}

main "$@"
