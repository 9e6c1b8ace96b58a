#!/usr/bin/env bash
# Regenerate the packet captures in samples/ with real DICOM peers.
#
# Usage: samples/make_samples.sh [SCENARIO...]
#   SCENARIO is one or more of: echo store store_mtu1500 find move get
#   reject_called_ae reject_context abort pynetdicom pcapng move_concurrent
#   commitment_same commitment_reverse, and the failure
#   samples (fail_*.pcap, for the diagnosis rules): fail_reject_calling_ae
#   fail_reject_busy fail_no_context fail_abort_provider
#   fail_transport_dropped fail_never_associated fail_tls_client_to_plain
#   fail_plain_client_to_tls fail_pdu_too_long fail_unaccepted_context
#   fail_dimse_status fail_unanswered fail_idle_timeout
#   fail_release_collision fail_move_unknown_dest_dcmqrscp
#   fail_move_unknown_dest_orthanc fail_move_dest_down_dcmqrscp
#   fail_move_dest_down_orthanc fail_cleartext_credentials fail_async_window
#   fail_get_no_role_orthanc fail_get_no_role_dcmqrscp fail_capture_gap
#   fail_snaplen fail_partial_association fail_move_sub_rejected_orthanc
#   fail_move_wrong_ae_pynetdicom fail_move_sub_rejected_pynetdicom
#   fail_move_capture_filtered fail_commitment_failed_refs
#   fail_commitment_reverse_rejected fail_commitment_reverse_refused
#   fail_commitment_no_report fail_get_partial fail_tcp_loss
#   fail_tcp_zero_window
#   (default: all of them, in that order; "fail" stands for all the fail_*
#   ones).  fail_capture_gap, fail_snaplen, fail_partial_association and
#   fail_get_partial are cut out of store_mtu1500.pcap / store.pcap /
#   get_orthanc.pcap (from $OUT, else from this directory) with tshark and
#   editcap.
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
# pynetdicom's Python apps of the same name), Orthanc 1.10.x, pynetdicom 3.0;
# for a few failure samples, hand-written peers (peer_raw.py) facing a real
# one.  openssl makes a throwaway key/certificate for the TLS samples.
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

# Failure samples: a second Orthanc that rejects unknown calling AE titles,
# DCMTK dcmqrscp (C-MOVE/C-GET SCP), the hand-written release-collision SCP,
# a port where nothing ever listens (connection refused; also the address of
# the C-MOVE destination DOWNDEST, which is "down"), and DICOM TLS (2762).
P_ORTHANC_STRICT=4243
P_DCMQRSCP=11117
P_RAW=11116
P_CLOSED=11119
P_TLS=2762

# Workflow samples: pynetdicom's C-MOVE SCP (peer_qrscp.py), the modality's
# storage commitment report listener (peer_commit.py scu), pynetdicom's
# storage commitment SCP (peer_commit.py scp).
P_QRSCP=11118
P_MODALITY=11120
P_COMMIT=11121

# The veth pair of the MTU 1500 scenario: client side A, server side B.
VETH_A_IP=10.77.0.1
VETH_B_IP=10.77.0.2
VETH_MTU=1500

ALL_SCENARIOS=(echo store store_mtu1500 find move get reject_called_ae
               reject_context abort pynetdicom pcapng move_concurrent
               commitment_same commitment_reverse
               fail_reject_calling_ae fail_reject_busy fail_no_context
               fail_abort_provider fail_transport_dropped fail_never_associated
               fail_tls_client_to_plain fail_plain_client_to_tls
               fail_pdu_too_long fail_unaccepted_context fail_dimse_status
               fail_unanswered fail_idle_timeout fail_release_collision
               fail_move_unknown_dest_dcmqrscp fail_move_unknown_dest_orthanc
               fail_move_dest_down_dcmqrscp fail_move_dest_down_orthanc
               fail_cleartext_credentials fail_async_window
               fail_get_no_role_orthanc fail_get_no_role_dcmqrscp
               fail_capture_gap fail_snaplen fail_partial_association
               fail_move_sub_rejected_orthanc fail_move_wrong_ae_pynetdicom
               fail_move_sub_rejected_pynetdicom fail_move_capture_filtered
               fail_commitment_failed_refs fail_commitment_reverse_rejected
               fail_commitment_reverse_refused fail_commitment_no_report
               fail_get_partial fail_tcp_loss fail_tcp_zero_window)

NS=""                      # main namespace ("" = host, fallback mode)
NS_A="" NS_B=""            # the two ends of the veth pair
WORK=""                    # temporary work directory
PIDS=()                    # background processes still to stop
ORTHANC_PID=""
DCMQRSCP_PID=""
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
declare -A CAP_FILTER=()   # capture -> display filter of its summary (default: dicom)
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
    if [[ $HAVE_TSHARK -eq 1 && -z ${ALLOW_LOSS:-} ]]; then
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

# summary FILE PORT...: frame number and Info column of every DICOM frame
# (of every frame matching $SUMMARY_FILTER if set).
summary() {
    local file=$1; shift
    [[ $HAVE_TSHARK -eq 1 ]] || return 0
    local -a d
    mapfile -t d < <(decode_args "$@")
    tshark -r "$file" "${d[@]}" -Y "${SUMMARY_FILTER:-dicom}" -T fields -e frame.number \
        -e _ws.col.Info 2>/dev/null
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
    STUDY2_UID=$("$DCMTK/dcmdump" -q -s +P 0020,000d "$MR" |
                 sed -n 's/.*\[\(.*\)\].*/\1/p')
    [[ -n $STUDY2_UID ]] || die "could not read StudyInstanceUID of mr1.dcm"
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
    "GETSCU"   : [ "GETSCU",   "$HOST", 11192 ],
    "PYSCU"    : [ "PYSCU",    "$HOST", 11193 ],  // fail_get_no_role_orthanc
    "DOWNDEST" : [ "DOWNDEST", "$HOST", $P_CLOSED ],  // down: fail_move_dest_down_*
    // a destination that rejects Orthanc's association (peer_scp.py
    // strict-called answers only to PYSCP): fail_move_sub_rejected_orthanc
    "REJDEST"  : [ "REJDEST",  "$HOST", $P_PYNET ],
    // the storage commitment SCU, whose report listener is on P_MODALITY
    "MODALITY" : [ "MODALITY", "$HOST", $P_MODALITY ]
  },
  "SynchronousCMove" : true,
  "DicomAssociationCloseDelay" : 0,
  "DicomScuTimeout" : 10,  // also bounds a storage commitment report attempt
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

# --- workflows across associations -----------------------------------------

# MOVE_ARGS: movescu's arguments for a study-level C-MOVE by MOVESCU, to
# which "-aec CALLED -aem DEST -k StudyInstanceUID=UID HOST PORT" are added.
MOVE_ARGS=(-v -S -aet MOVESCU -k QueryRetrieveLevel=STUDY)

# 12. Two C-MOVEs at once from the same AE title and with the same Message
# ID (two movescu runs, AE MOVESCU, both message ID 1): study 1 (3 CT) and
# study 2 (MR) from Orthanc to STORESCP, a `storescp --fork` that sleeps 1 s
# in each C-STORE so that the two C-MOVEs overlap.  Meanwhile an unrelated
# storescu (AE MODALITY2) stores mr1.dcm to the same STORESCP.  Orthanc's
# sub-associations carry Move Originator AE Title MOVESCU and Message ID 1,
# both of them: only the time and the UIDs asked for tell them apart.
scenario_move_concurrent() {
    start_orthanc
    local d=$WORK/move_concurrent; mkdir -p "$d"
    start_storescp "$d" "$P_MOVE_DEST" --fork --sleep-during 1 +uf
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_ORTHANC or tcp port $P_MOVE_DEST"
    start_peer_bg "$d/move1.log" "$DCMTK/movescu" "${MOVE_ARGS[@]}" -aec ORTHANC \
        -aem STORESCP -k "StudyInstanceUID=$STUDY1_UID" "$HOST" "$P_ORTHANC"
    local m1=$BG_PID
    wait_for_line "$d/move1.log" "Sending Move Request"
    start_peer_bg "$d/move2.log" "$DCMTK/movescu" "${MOVE_ARGS[@]}" -aec ORTHANC \
        -aem STORESCP -k "StudyInstanceUID=$STUDY2_UID" "$HOST" "$P_ORTHANC"
    local m2=$BG_PID
    wait_for_line "$d/move2.log" "Sending Move Request"
    peer "$DCMTK/storescu" -v -aet MODALITY2 -aec STORESCP "$HOST" "$P_MOVE_DEST" "$MR"
    wait_exit "$m1" 30
    wait_exit "$m2" 30
    capture_stop move_concurrent_orthanc.pcap "$P_ORTHANC $P_MOVE_DEST"
    stop_pid "$SCP_PID"
    check_received "$d/recv" 5
    local f=$OUT/move_concurrent_orthanc.pcap ports="$P_ORTHANC $P_MOVE_DEST"
    expect "$f" "$ports" 2 'C-MOVE-RQ'
    expect "$f" "$ports" 5 'C-STORE-RQ'
    expect "$f" "$ports" 4 'Move Originator Application Entity Title'
    expect "$f" "$ports" 2 'C-MOVE-RSP.*Success'
}

# 13. Storage commitment on the N-ACTION's own association: peer_commit.py scu
# (AE MODALITY, no role selection: default roles) asks pynetdicom's commitment
# SCP (peer_commit.py scp same, AE PYARCHIVE) for ct1 and ct2; PYARCHIVE
# answers the N-ACTION, then sends the N-EVENT-REPORT (event type 1) on the
# same association, which MODALITY keeps open for it (PS3.4 J.3).
scenario_commitment_same() {
    local d=$WORK/commitment_same; mkdir -p "$d"
    start_commit_scp "$d" same
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_COMMIT"
    peer "$PY" "$HERE/peer_commit.py" scu "$HOST" "$P_COMMIT" PYARCHIVE "$P_MODALITY" \
        --same --no-listen "${CT[0]}" "${CT[1]}"
    capture_stop commitment_same_pynetdicom.pcap "$P_COMMIT"
    stop_pid "$COMMIT_PID"
    local f=$OUT/commitment_same_pynetdicom.pcap p=$P_COMMIT
    expect "$f" "$p" 1 'N-ACTION-RSP'
    expect "$f" "$p" 1 'N-EVENT-REPORT-RQ'
    expect "$f" "$p" 1 'Transaction UID'
    expect_none "$f" "$p" 'Role Selection'
}

# 14. Storage commitment on a reverse association: MODALITY asks Orthanc
# (storage commitment SCP) for ct1 and ct2 and releases; Orthanc opens an
# association back to MODALITY (DicomModalities: 127.0.0.1:P_MODALITY, SCP
# role proposed) and sends the N-EVENT-REPORT (event type 1, both committed).
scenario_commitment_reverse() {
    start_orthanc
    local d=$WORK/commitment_reverse; mkdir -p "$d"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_ORTHANC or tcp port $P_MODALITY"
    peer "$PY" "$HERE/peer_commit.py" scu "$HOST" "$P_ORTHANC" ORTHANC "$P_MODALITY" \
        "${CT[0]}" "${CT[1]}"
    capture_stop commitment_reverse_orthanc.pcap "$P_ORTHANC $P_MODALITY"
    local f=$OUT/commitment_reverse_orthanc.pcap ports="$P_ORTHANC $P_MODALITY"
    expect "$f" "$ports" 1 'N-ACTION-RSP'
    expect "$f" "$ports" 1 'N-EVENT-REPORT-RQ'
    expect "$f" "$ports" 1 'Role Selection'
    expect "$f" "$ports" 2 'A-RELEASE response'
}

# start_commit_scp DIR MODE: peer_commit.py scp MODE on P_COMMIT; sets COMMIT_PID.
start_commit_scp() {
    ns_prefix "$NS"
    start_bg "$1/commit_scp.log" "${RUN[@]}" "$PY" "$HERE/peer_commit.py" scp \
        "$HOST" "$P_COMMIT" "$2"
    COMMIT_PID=$BG_PID
    wait_listen "$NS" "$P_COMMIT"
}

# ---------------------------------------------------------------------------
# failure samples (fail_*.pcap): one symptom each, for the diagnosis rules
# ---------------------------------------------------------------------------

# The summary of a failure sample lists every frame but the pure ACKs: TCP
# SYN/FIN/RST, TLS records and undecodable bytes are often the symptom.
FAIL_FILTER='dicom or tls or tcp.len > 0 or tcp.flags.syn == 1 or tcp.flags.fin == 1 or tcp.flags.reset == 1'

# fail_capture_stop NAME "PORT...": capture_stop, with the failure summary.
fail_capture_stop() {
    capture_stop "$@"
    CAP_FILTER[$1]=$FAIL_FILTER
}

# peer_rc CMD...: run a peer that is expected to fail (or may fail), log its
# exit status, never fail the script; a peer killed by `timeout` (124) does.
peer_rc() {
    local rc=0
    peer "$@" || rc=$?
    ((rc != 124)) || die "$(basename "$1") timed out after $PEER_TIMEOUT s"
    log "    $(basename "$1") exited with status $rc"
}

# start_peer_bg LOG CMD...: a peer in the background (in the namespace,
# bounded by PEER_TIMEOUT); sets BG_PID.
start_peer_bg() {
    local logfile=$1; shift
    ns_prefix "$NS"
    start_bg "$logfile" "${RUN[@]}" timeout "$PEER_TIMEOUT" "$@"
}

# wait_exit PID SECS: wait (at most SECS s) for PID to end by itself, then
# stop it (stop_pid) if it has not.
wait_exit() {
    local pid=$1 secs=$2 i
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && warn "PID $pid still running after $secs s: stopping it"
    stop_pid "$pid"
}

# start_py_scp DIR PORT MODE [ARG]: peer_scp.py (pynetdicom, AE PYSCP) in
# mode MODE; sets PYSCP_PID.
start_py_scp() {
    local dir=$1 port=$2; shift 2
    ns_prefix "$NS"
    start_bg "$dir/peer_scp-$port.log" "${RUN[@]}" "$PY" "$HERE/peer_scp.py" \
        "$HOST" "$port" PYSCP "$@"
    PYSCP_PID=$BG_PID
    wait_listen "$NS" "$port"
}

# expect_filter FILE "PORT..." MIN FILTER: at least MIN frames match the
# display FILTER (the DICOM ports decoded as DICOM).
expect_filter() {
    local file=$1 ports=$2 min=$3 filter=$4 n
    [[ $HAVE_TSHARK -eq 1 ]] || return 0
    local -a d
    # shellcheck disable=SC2086  # ports is a list
    mapfile -t d < <(decode_args $ports)
    n=$(tshark -r "$file" "${d[@]}" -Y "$filter" 2>/dev/null | wc -l)
    if ((n < min)); then
        die "$(basename "$file"): expected >= $min frames matching '$filter', got $n"
    fi
    printf '    ok: %3d frames: %s\n' "$n" "$filter" >&2
}

# expect_none FILE "PORT..." REGEX: no line of the verbose DICOM decode
# matches REGEX.
expect_none() {
    local file=$1 ports=$2 re=$3 n
    [[ $HAVE_TSHARK -eq 1 ]] || return 0
    local -a d
    # shellcheck disable=SC2086  # ports is a list
    mapfile -t d < <(decode_args $ports)
    n=$(tshark -r "$file" "${d[@]}" -Y dicom -V 2>/dev/null | grep -Eic -- "$re" || true)
    ((n == 0)) || die "$(basename "$file"): expected no line matching /$re/, got $n"
    printf '    ok:   0 x /%s/\n' "$re" >&2
}

# --- association rejected ------------------------------------------------

# A second Orthanc (own config, storage and port) that knows only the
# calling AE title KNOWNSCU and allows nothing to unknown callers, so that it
# rejects the others' associations: A-ASSOCIATE-RJ 1/1/3.
start_orthanc_strict() {
    local d=$WORK/orthanc_strict; mkdir -p "$d/db"
    cat >"$d/orthanc.json" <<JSON
{
  "Name" : "dicomtap-samples-strict",
  "StorageDirectory" : "$d/db",
  "IndexDirectory" : "$d/db",
  "Plugins" : [ ],
  "HttpServerEnabled" : false,
  "DicomServerEnabled" : true,
  "DicomAet" : "ORTHANC",
  "DicomPort" : $P_ORTHANC_STRICT,
  "DicomCheckCalledAet" : true,
  "DicomAlwaysAllowEcho" : false,
  "DicomAlwaysAllowStore" : false,
  "DicomAlwaysAllowFind" : false,
  "DicomAlwaysAllowFindWorklist" : false,
  "DicomAlwaysAllowGet" : false,
  "DicomAlwaysAllowMove" : false,
  "DicomCheckModalityHost" : false,
  "DicomModalities" : {
    "KNOWNSCU" : [ "KNOWNSCU", "$HOST", 11194 ]
  },
  "SaveJobs" : false
}
JSON
    ns_prefix "$NS"
    start_bg "$d/orthanc.log" "${RUN[@]}" "$ORTHANC_BIN" --verbose "$d/orthanc.json"
    STRICT_PID=$BG_PID
    wait_listen "$NS" "$P_ORTHANC_STRICT"
}

# Calling AE title not recognised: echoscu as UNKNOWNSCU -> A-ASSOCIATE-RJ
# 1/1/3; then echoscu as KNOWNSCU (declared in DicomModalities) -> accepted,
# C-ECHO Success, release.
scenario_fail_reject_calling_ae() {
    local d=$WORK/fail_reject_calling_ae; mkdir -p "$d"
    start_orthanc_strict
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_ORTHANC_STRICT"
    peer_rc "$DCMTK/echoscu" -v -aet UNKNOWNSCU -aec ORTHANC "$HOST" "$P_ORTHANC_STRICT"
    peer "$DCMTK/echoscu" -v -aet KNOWNSCU -aec ORTHANC "$HOST" "$P_ORTHANC_STRICT"
    fail_capture_stop fail_reject_calling_ae.pcap "$P_ORTHANC_STRICT"
    stop_pid "$STRICT_PID"
    local f=$OUT/fail_reject_calling_ae.pcap p=$P_ORTHANC_STRICT
    expect "$f" "$p" 1 'Reason: Calling AE title not recognized'
    expect_filter "$f" "$p" 1 'dicom.assoc.reject.result == 1 && dicom.assoc.reject.source == 1 && dicom.assoc.reject.reason == 3'
    expect "$f" "$p" 1 'C-ECHO-RSP'
}

# Transient rejection, local limit exceeded: a pynetdicom SCP with
# maximum_associations = 1 holds an association with a pynetdicom SCU (silent
# for 2 s) when echoscu calls: A-ASSOCIATE-RJ 2/3/2.
scenario_fail_reject_busy() {
    local d=$WORK/fail_reject_busy; mkdir -p "$d"
    start_py_scp "$d" "$P_PYNET" one-assoc
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_PYNET"
    start_peer_bg "$d/hold.log" "$PY" "$HERE/peer_scu.py" "$HOST" "$P_PYNET" PYSCP hold 2
    local hold=$BG_PID
    wait_for_line "$d/hold.log" "now silent"
    peer_rc "$DCMTK/echoscu" -v -aet ECHOSCU -aec PYSCP "$HOST" "$P_PYNET"
    wait_exit "$hold" 15
    fail_capture_stop fail_reject_busy.pcap "$P_PYNET"
    stop_pid "$PYSCP_PID"
    local f=$OUT/fail_reject_busy.pcap p=$P_PYNET
    expect "$f" "$p" 1 'Reason: Local limit exceeded'
    expect_filter "$f" "$p" 1 'dicom.assoc.reject.result == 2 && dicom.assoc.reject.source == 3 && dicom.assoc.reject.reason == 2'
    expect "$f" "$p" 1 'A-RELEASE response'
}

# --- no presentation context accepted ----------------------------------------

# A pynetdicom SCP that supports CT Image Storage only.  storescu offers the
# MR (one context), echoscu offers Verification: both A-ASSOCIATE-AC have
# every context rejected (result 3); DCMTK then closes the TCP connection
# without A-RELEASE or A-ABORT ("No Acceptable Presentation Contexts").
scenario_fail_no_context() {
    local d=$WORK/fail_no_context; mkdir -p "$d"
    start_py_scp "$d" "$P_PYNET" ct-only
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_PYNET"
    peer_rc "$DCMTK/storescu" -v -R -aet STORESCU -aec PYSCP "$HOST" "$P_PYNET" "$MR"
    peer_rc "$DCMTK/echoscu" -v -aet ECHOSCU -aec PYSCP "$HOST" "$P_PYNET"
    fail_capture_stop fail_no_context.pcap "$P_PYNET"
    stop_pid "$PYSCP_PID"
    local f=$OUT/fail_no_context.pcap p=$P_PYNET
    expect "$f" "$p" 2 'A-ASSOCIATE accept'
    expect "$f" "$p" 2 'Result: Abstract Syntax Unsupported \(0x3\)'
    expect_none "$f" "$p" 'Result: Accept'
    expect_none "$f" "$p" 'P-DATA|A-RELEASE|PDU Type: ABORT'
}

# --- aborts ------------------------------------------------------------------

# Provider abort: a hand-written requestor (peer_raw.py garbage) associates
# with a pynetdicom SCP, then sends a PDU of unknown type 0x09; pynetdicom
# answers A-ABORT source 2 (service provider), reason 0 (not specified).
scenario_fail_abort_provider() {
    local d=$WORK/fail_abort_provider; mkdir -p "$d"
    start_py_scp "$d" "$P_PYNET" verification
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_PYNET"
    peer "$PY" "$HERE/peer_raw.py" garbage "$HOST" "$P_PYNET" PYSCP
    fail_capture_stop fail_abort_provider.pcap "$P_PYNET"
    stop_pid "$PYSCP_PID"
    local f=$OUT/fail_abort_provider.pcap p=$P_PYNET
    expect "$f" "$p" 1 'A-ASSOCIATE accept'
    expect_filter "$f" "$p" 1 'dicom.assoc.abort.source == 2'
    expect_filter "$f" "$p" 1 'tcp.srcport != '"$p"' && tcp.len == 6'
}

# Transport dropped: storescp (--sleep-during 1: it reads slowly) is killed
# with SIGKILL while storescu sends big1.dcm (296 KB); the kernel resets the
# connection (RST: storescp had unread data).  The socket receive buffers of
# the namespace are made small (tcp_rmem 32 KB) for this one scenario so that
# only ~30 KB of the data set is on the wire when storescp is killed, 0.5 s
# after storescu starts sending (a run may also hold a TCP retransmission).
scenario_fail_transport_dropped() {
    local d=$WORK/fail_transport_dropped; mkdir -p "$d"
    local rmem=""
    if [[ -n $NS ]]; then
        rmem=$(in_ns sysctl -n net.ipv4.tcp_rmem)
        in_ns sysctl -q -w net.ipv4.tcp_rmem="4096 32768 32768"
    else
        warn "no namespace: leaving tcp_rmem alone, the capture will be bigger"
    fi
    start_storescp "$d" "$P_SCP" --sleep-during 1
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_SCP"
    start_peer_bg "$d/storescu.log" "$DCMTK/storescu" -v -R -aet STORESCU -aec STORESCP \
        "$HOST" "$P_SCP" "$BIG"
    local scu=$BG_PID
    wait_for_line "$d/storescu.log" "Sending Store Request"
    sleep 0.5
    log "    killing storescp (PID $SCP_PID) with SIGKILL"
    stop_pid "$SCP_PID" KILL
    wait_exit "$scu" 15
    fail_capture_stop fail_transport_dropped.pcap "$P_SCP"
    [[ -z $rmem ]] || in_ns sysctl -q -w net.ipv4.tcp_rmem="$rmem"
    local f=$OUT/fail_transport_dropped.pcap p=$P_SCP
    expect "$f" "$p" 1 'C-STORE-RQ'
    expect_none "$f" "$p" 'C-STORE-RSP|A-RELEASE|PDU Type: ABORT'
    expect_filter "$f" "$p" 1 "tcp.flags.reset == 1 && tcp.srcport == $p"
}

# --- no association at all ---------------------------------------------------

# Three TCP connections without any A-ASSOCIATE-RQ: one to storescp that
# stays silent for 1 s and closes (peer_raw.py connect-idle), one that closes
# at once (connect-close, a health check), and echoscu to a port where
# nothing listens (SYN answered by RST: connection refused).
scenario_fail_never_associated() {
    local d=$WORK/fail_never_associated; mkdir -p "$d"
    start_storescp "$d" "$P_SCP"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_SCP or tcp port $P_CLOSED"
    peer "$PY" "$HERE/peer_raw.py" connect-idle "$HOST" "$P_SCP" 1
    peer "$PY" "$HERE/peer_raw.py" connect-close "$HOST" "$P_SCP"
    peer_rc "$DCMTK/echoscu" -v -aet ECHOSCU -aec STORESCP "$HOST" "$P_CLOSED"
    fail_capture_stop fail_never_associated.pcap "$P_SCP $P_CLOSED"
    stop_pid "$SCP_PID"
    local f=$OUT/fail_never_associated.pcap p="$P_SCP $P_CLOSED"
    expect_filter "$f" "$p" 3 'tcp.flags.syn == 1 && tcp.flags.ack == 0'
    expect_filter "$f" "$p" 1 "tcp.flags.reset == 1 && tcp.srcport == $P_CLOSED"
    expect_filter "$f" "$p" 4 'tcp.flags.fin == 1'
    expect_none "$f" "$p" 'PDU Type'
}

# --- TLS on one side only ----------------------------------------------------

# A throwaway self-signed key and certificate (EC P-256, 1 day) for storescp
# +tls; never stored in the repository.  Sets TLS_KEY/TLS_CERT.
make_tls_key() {
    TLS_KEY=$WORK/tls/key.pem TLS_CERT=$WORK/tls/cert.pem
    [[ -s $TLS_CERT ]] && return 0
    command -v openssl >/dev/null || die "openssl is needed for the TLS samples"
    mkdir -p "$WORK/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$TLS_KEY" -out "$TLS_CERT" -days 1 -subj "/CN=dicomtap-samples" \
        >"$WORK/tls/openssl.log" 2>&1 || { cat "$WORK/tls/openssl.log" >&2; die "openssl failed"; }
}

# echoscu +tla (anonymous TLS) against a plain storescp on 11112: the
# ClientHello reaches the DICOM port; storescp reads it as a PDU of type 0x16
# ("Unrecognized PDU type: 22") and resets the connection.
scenario_fail_tls_client_to_plain() {
    local d=$WORK/fail_tls_client_to_plain; mkdir -p "$d"
    start_storescp "$d" "$P_SCP"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_SCP"
    peer_rc "$DCMTK/echoscu" -v +tla -ic -aet ECHOSCU -aec STORESCP "$HOST" "$P_SCP"
    fail_capture_stop fail_tls_client_to_plain.pcap "$P_SCP"
    stop_pid "$SCP_PID"
    local f=$OUT/fail_tls_client_to_plain.pcap p=$P_SCP
    expect_filter "$f" "$p" 1 'tls.handshake.type == 1'
    expect_filter "$f" "$p" 1 "tcp.flags.reset == 1 && tcp.srcport == $p"
    expect_none "$f" "$p" 'PDU Type'
}

# A plain echoscu against storescp +tls on the DICOM TLS port 2762: the
# A-ASSOCIATE-RQ reaches a TLS server ("TLS error: wrong version number"),
# which resets the connection; nothing TLS on the wire.
scenario_fail_plain_client_to_tls() {
    local d=$WORK/fail_plain_client_to_tls; mkdir -p "$d"
    make_tls_key
    start_storescp "$d" "$P_TLS" +tls "$TLS_KEY" "$TLS_CERT" -ic
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_TLS"
    peer_rc "$DCMTK/echoscu" -v -aet ECHOSCU -aec STORESCP "$HOST" "$P_TLS"
    fail_capture_stop fail_plain_client_to_tls.pcap "$P_TLS"
    stop_pid "$SCP_PID"
    local f=$OUT/fail_plain_client_to_tls.pcap p=$P_TLS
    expect "$f" "$p" 1 'A-ASSOCIATE request'
    expect_none "$f" "$p" 'A-ASSOCIATE (accept|reject)'
    expect_filter "$f" "$p" 1 "tcp.flags.reset == 1 && tcp.srcport == $p"
}

# --- protocol violations by a hand-written requestor -------------------------

# A P-DATA-TF longer than the acceptor's maximum PDU length (4096): the
# C-STORE-RQ command and ct1's data set in one PDU of 9350 bytes.  DCMTK
# storescp -pdu 4096 aborts ("Illegal PDU Length 9350. Max expected 4096",
# A-ABORT source 0, then RST); pynetdicom (maximum_pdu_size 4096) accepts it
# and answers Success.
scenario_fail_pdu_too_long() {
    local d=$WORK/fail_pdu_too_long; mkdir -p "$d"
    start_storescp "$d" "$P_SCP" -pdu 4096
    start_py_scp "$d" "$P_PYNET" pdu4096
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_SCP or tcp port $P_PYNET"
    peer "$PY" "$HERE/peer_raw.py" oversize "$HOST" "$P_SCP" STORESCP "${CT[0]}"
    peer "$PY" "$HERE/peer_raw.py" oversize "$HOST" "$P_PYNET" PYSCP "${CT[0]}"
    fail_capture_stop fail_pdu_too_long.pcap "$P_SCP $P_PYNET"
    stop_pid "$SCP_PID"
    stop_pid "$PYSCP_PID"
    local f=$OUT/fail_pdu_too_long.pcap p="$P_SCP $P_PYNET"
    expect "$f" "$p" 2 'Max PDU Length: 4096'
    expect_filter "$f" "$p" 2 'dicom.pdu.type == 4 && dicom.pdu.len > 4096'
    expect_filter "$f" "$p" 1 "dicom.assoc.abort && tcp.srcport == $P_SCP"
    expect "$f" "$p" 1 'C-STORE-RSP'
}

# A request on a presentation context that was never proposed: context 1
# (Verification) negotiated, C-ECHO-RQ sent on context 3.  Both DCMTK
# storescp ("ASC Bad presentation context ID") and pynetdicom abort
# (A-ABORT source 0).
scenario_fail_unaccepted_context() {
    local d=$WORK/fail_unaccepted_context; mkdir -p "$d"
    start_storescp "$d" "$P_SCP"
    start_py_scp "$d" "$P_PYNET" verification
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_SCP or tcp port $P_PYNET"
    peer "$PY" "$HERE/peer_raw.py" wrong-context "$HOST" "$P_SCP" STORESCP
    peer "$PY" "$HERE/peer_raw.py" wrong-context "$HOST" "$P_PYNET" PYSCP
    fail_capture_stop fail_unaccepted_context.pcap "$P_SCP $P_PYNET"
    stop_pid "$SCP_PID"
    stop_pid "$PYSCP_PID"
    local f=$OUT/fail_unaccepted_context.pcap p="$P_SCP $P_PYNET"
    expect_filter "$f" "$p" 2 'dicom.pdv.ctx == 3'
    expect_filter "$f" "$p" 2 'dicom.assoc.abort'
    expect_none "$f" "$p" 'C-ECHO-RSP'
}

# --- DIMSE statuses ----------------------------------------------------------

# storescu -nh (go on after a failure) sends ct1, ct2, ct3 to a pynetdicom SCP
# that answers 0xA700 (Refused: out of resources) with an Error Comment,
# 0xB000 (Warning: coercion of data elements), then 0x0000.
scenario_fail_dimse_status() {
    local d=$WORK/fail_dimse_status; mkdir -p "$d"
    start_py_scp "$d" "$P_PYNET" statuses
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_PYNET"
    peer_rc "$DCMTK/storescu" -v -R -nh -aet STORESCU -aec PYSCP "$HOST" "$P_PYNET" "${CT[@]}"
    fail_capture_stop fail_dimse_status.pcap "$P_PYNET"
    stop_pid "$PYSCP_PID"
    local f=$OUT/fail_dimse_status.pcap p=$P_PYNET
    expect "$f" "$p" 1 '\(0000,0900\).*\(0xa700\)'
    expect "$f" "$p" 1 '\(0000,0902\).*Error Comment.*out of resources'
    expect "$f" "$p" 1 '\(0000,0900\).*\(0xb000\)'
    expect "$f" "$p" 1 'C-STORE-RSP ID=3 \(Success\)'
    expect "$f" "$p" 1 'A-RELEASE response'
}

# A request never answered: echoscu -td 2 (DIMSE timeout 2 s) against a
# pynetdicom SCP whose C-ECHO handler sleeps 4 s; echoscu aborts (A-ABORT
# source 0) after 2 s, the late response never reaches the wire.
scenario_fail_unanswered() {
    local d=$WORK/fail_unanswered; mkdir -p "$d"
    start_py_scp "$d" "$P_PYNET" slow-echo 4
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_PYNET"
    peer_rc "$DCMTK/echoscu" -v -td 2 -aet ECHOSCU -aec PYSCP "$HOST" "$P_PYNET"
    wait_for_line "$d/peer_scp-$P_PYNET.log" "answering C-ECHO Success (late)"
    fail_capture_stop fail_unanswered.pcap "$P_PYNET"
    stop_pid "$PYSCP_PID"
    local f=$OUT/fail_unanswered.pcap p=$P_PYNET
    expect "$f" "$p" 1 'C-ECHO-RQ'
    expect_none "$f" "$p" 'C-ECHO-RSP|A-RELEASE'
    expect_filter "$f" "$p" 1 "dicom.assoc.abort.source == 0 && tcp.dstport == $p"
}

# Idle until the acceptor's timeout: a pynetdicom SCU associates and stays
# silent (up to 5 s).  1: pynetdicom SCP, network_timeout 3 -> A-ABORT after
# 3 s.  2: storescp -ts 3 (socket timeout) -> closes the connection (FIN)
# after 3 s without any A-ABORT.
scenario_fail_idle_timeout() {
    local d=$WORK/fail_idle_timeout; mkdir -p "$d"
    start_py_scp "$d" "$P_PYNET" idle-timeout 3
    start_storescp "$d" "$P_SCP" -ts 3
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_PYNET or tcp port $P_SCP"
    peer "$PY" "$HERE/peer_scu.py" "$HOST" "$P_PYNET" PYSCP hold 5
    peer "$PY" "$HERE/peer_scu.py" "$HOST" "$P_SCP" STORESCP hold 5
    fail_capture_stop fail_idle_timeout.pcap "$P_PYNET $P_SCP"
    stop_pid "$PYSCP_PID"
    stop_pid "$SCP_PID"
    local f=$OUT/fail_idle_timeout.pcap p="$P_PYNET $P_SCP"
    expect "$f" "$p" 2 'A-ASSOCIATE accept'
    expect_filter "$f" "$p" 1 "dicom.assoc.abort && tcp.srcport == $P_PYNET"
    expect_filter "$f" "$p" 1 "tcp.flags.fin == 1 && tcp.srcport == $P_SCP"
    expect_none "$f" "$p" 'P-DATA|A-RELEASE'
}

# --- release collision -------------------------------------------------------

# A release collision (both A-RELEASE-RQ before any A-RELEASE-RP).  No real
# acceptor does this on purpose, so the acceptor is hand-written (peer_raw.py
# collision-scp, AE RAWSCP): it answers C-ECHO, and on the requestor's
# A-RELEASE-RQ sends its own A-RELEASE-RQ.  The requestors are real:
# 1: pynetdicom_scu.py (C-ECHO, release) handles the collision (PS3.8 Sta9:
#    A-RELEASE-RP, then waits for the acceptor's A-RELEASE-RP, closes);
# 2: DCMTK echoscu does not ("DUL Peer Requested Release") and closes the
#    connection without an A-RELEASE-RP.
scenario_fail_release_collision() {
    local d=$WORK/fail_release_collision; mkdir -p "$d"
    ns_prefix "$NS"
    start_bg "$d/raw_scp.log" "${RUN[@]}" timeout "$PEER_TIMEOUT" "$PY" "$HERE/peer_raw.py" \
        collision-scp "$HOST" "$P_RAW" RAWSCP 2
    local raw=$BG_PID
    wait_listen "$NS" "$P_RAW"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_RAW"
    peer "$PY" "$HERE/pynetdicom_scu.py" "$HOST" "$P_RAW" RAWSCP
    peer_rc "$DCMTK/echoscu" -v -aet ECHOSCU -aec RAWSCP "$HOST" "$P_RAW"
    wait_exit "$raw" 15
    fail_capture_stop fail_release_collision.pcap "$P_RAW"
    local f=$OUT/fail_release_collision.pcap p=$P_RAW
    expect "$f" "$p" 2 'C-ECHO-RSP'
    expect_filter "$f" "$p" 2 "dicom.pdu.type == 5 && tcp.srcport == $p"
    expect_filter "$f" "$p" 2 "dicom.pdu.type == 5 && tcp.dstport == $p"
    expect_filter "$f" "$p" 2 'dicom.pdu.type == 6'
}

# --- C-MOVE / C-GET failures -------------------------------------------------

# DCMTK dcmqrscp (AE DCMQRSCP, fork mode, own config and database in $WORK)
# holding study 1 (3 CT, loaded before any capture).  Its HostTable knows the
# move destinations STORESCP (11113) and DOWNDEST (11119, nothing listens).
start_dcmqrscp() {
    [[ -n $DCMQRSCP_PID ]] && return 0
    local d=$WORK/dcmqrscp; mkdir -p "$d/db"
    cat >"$d/dcmqrscp.cfg" <<CFG
# dcmqrscp configuration for dicomtap's failure samples
NetworkTCPPort  = $P_DCMQRSCP
MaxPDUSize      = 16384
MaxAssociations = 4

HostTable BEGIN
storescp = (STORESCP, $HOST, $P_MOVE_DEST)
downdest = (DOWNDEST, $HOST, $P_CLOSED)
HostTable END

VendorTable BEGIN
VendorTable END

AETable BEGIN
DCMQRSCP $d/db RW (10, 64mb) ANY
AETable END
CFG
    ns_prefix "$NS"
    start_bg "$d/dcmqrscp.log" "${RUN[@]}" "$DCMTK/dcmqrscp" -v -c "$d/dcmqrscp.cfg"
    DCMQRSCP_PID=$BG_PID
    wait_listen "$NS" "$P_DCMQRSCP"
    peer "$DCMTK/storescu" -R -aet LOADER -aec DCMQRSCP "$HOST" "$P_DCMQRSCP" \
        "${CT[@]}" >"$d/load.log" 2>&1 ||
        { cat "$d/load.log" >&2; die "could not load the objects into dcmqrscp"; }
    log "dcmqrscp up (PID $DCMQRSCP_PID), study 1 (3 CT) loaded"
}

stop_dcmqrscp() {
    [[ -n $DCMQRSCP_PID ]] || return 0
    stop_pid "$DCMQRSCP_PID"
    DCMQRSCP_PID=""
}

# move_study1 PORT CALLED DEST: movescu (MOVESCU) C-MOVE of study 1 to DEST.
move_study1() {
    peer_rc "$DCMTK/movescu" -v -S -aet MOVESCU -aec "$2" -aem "$3" \
        -k QueryRetrieveLevel=STUDY -k "StudyInstanceUID=$STUDY1_UID" "$HOST" "$1"
}

# C-MOVE to a destination AE title the SCP does not know: dcmqrscp answers
# 0xA801 (Refused: Move Destination unknown), no sub-association.
scenario_fail_move_unknown_dest_dcmqrscp() {
    start_dcmqrscp
    local d=$WORK/fail_move_unknown_dest_dcmqrscp; mkdir -p "$d"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_DCMQRSCP or tcp port $P_CLOSED"
    move_study1 "$P_DCMQRSCP" DCMQRSCP UNKNOWNDEST
    fail_capture_stop fail_move_unknown_dest_dcmqrscp.pcap "$P_DCMQRSCP"
    local f=$OUT/fail_move_unknown_dest_dcmqrscp.pcap p=$P_DCMQRSCP
    expect "$f" "$p" 1 'C-MOVE-RQ'
    expect "$f" "$p" 1 '\(0000,0900\).*\(0xa801\)'
    expect_filter "$f" "$p" 1 'tcp.flags.syn == 1 && tcp.flags.ack == 0'
}

# The same against Orthanc: it answers 0xC000 (Failed: unable to process),
# no Error Comment ("Unknown modality for AET: UNKNOWNDEST" only in its log).
scenario_fail_move_unknown_dest_orthanc() {
    start_orthanc
    local d=$WORK/fail_move_unknown_dest_orthanc; mkdir -p "$d"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_ORTHANC or tcp port $P_CLOSED"
    move_study1 "$P_ORTHANC" ORTHANC UNKNOWNDEST
    fail_capture_stop fail_move_unknown_dest_orthanc.pcap "$P_ORTHANC"
    local f=$OUT/fail_move_unknown_dest_orthanc.pcap p=$P_ORTHANC
    expect "$f" "$p" 1 'C-MOVE-RQ'
    expect "$f" "$p" 1 '\(0000,0900\).*\(0xc000\)'
    expect_filter "$f" "$p" 1 'tcp.flags.syn == 1 && tcp.flags.ack == 0'
}

# C-MOVE to a known destination that is down (DOWNDEST, 127.0.0.1:11119,
# nothing listens): the SCP's sub-association attempt is a SYN answered by
# RST.  dcmqrscp answers 0xA702 (Refused: out of resources, unable to perform
# sub-operations) with 3 failed sub-operations and the Failed SOP Instance UID
# List in a data set.
scenario_fail_move_dest_down_dcmqrscp() {
    start_dcmqrscp
    local d=$WORK/fail_move_dest_down_dcmqrscp; mkdir -p "$d"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_DCMQRSCP or tcp port $P_CLOSED"
    move_study1 "$P_DCMQRSCP" DCMQRSCP DOWNDEST
    fail_capture_stop fail_move_dest_down_dcmqrscp.pcap "$P_DCMQRSCP $P_CLOSED"
    local f=$OUT/fail_move_dest_down_dcmqrscp.pcap p="$P_DCMQRSCP $P_CLOSED"
    expect "$f" "$p" 1 '\(0000,0900\).*\(0xa702\)'
    expect "$f" "$p" 1 'Number of Failed Sub-operations +3'
    expect_filter "$f" "$p" 1 "tcp.flags.syn == 1 && tcp.dstport == $P_CLOSED"
    expect_filter "$f" "$p" 1 "tcp.flags.reset == 1 && tcp.srcport == $P_CLOSED"
}

# The same against Orthanc (DOWNDEST declared in its DicomModalities):
# SYN/RST to 11119, then 0xC000 without counters.
scenario_fail_move_dest_down_orthanc() {
    start_orthanc
    local d=$WORK/fail_move_dest_down_orthanc; mkdir -p "$d"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_ORTHANC or tcp port $P_CLOSED"
    move_study1 "$P_ORTHANC" ORTHANC DOWNDEST
    fail_capture_stop fail_move_dest_down_orthanc.pcap "$P_ORTHANC $P_CLOSED"
    local f=$OUT/fail_move_dest_down_orthanc.pcap p="$P_ORTHANC $P_CLOSED"
    expect "$f" "$p" 1 '\(0000,0900\).*\(0xc000\)'
    expect_filter "$f" "$p" 1 "tcp.flags.syn == 1 && tcp.dstport == $P_CLOSED"
    expect_filter "$f" "$p" 1 "tcp.flags.reset == 1 && tcp.srcport == $P_CLOSED"
}

# C-GET without SCP/SCU Role Selection: a pynetdicom SCU (peer_scu.py
# get-norole, AE PYSCU) proposes Study Root GET and CT Image Storage with
# the default roles.  Orthanc sends the 3 C-STORE-RQ anyway; pynetdicom
# refuses each (0x0122, SOP class not supported: it has no SCP role);
# pending C-GET-RSP with failed counters, final 0xA702 (3 failed).
scenario_fail_get_no_role_orthanc() {
    start_orthanc
    local d=$WORK/fail_get_no_role_orthanc; mkdir -p "$d"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_ORTHANC"
    peer "$PY" "$HERE/peer_scu.py" "$HOST" "$P_ORTHANC" ORTHANC get-norole "$STUDY1_UID"
    fail_capture_stop fail_get_no_role_orthanc.pcap "$P_ORTHANC"
    local f=$OUT/fail_get_no_role_orthanc.pcap p=$P_ORTHANC
    expect_none "$f" "$p" 'Role Selection'
    expect "$f" "$p" 3 'C-STORE-RQ'
    expect "$f" "$p" 3 '\(0000,0900\).*\(0x122\)'
    expect "$f" "$p" 1 '\(0000,0900\).*\(0xa702\)'
}

# The same against dcmqrscp: it sends no C-STORE-RQ at all ("No presentation
# context with requestor SCP role"): 3 pending C-GET-RSP counting failures,
# final 0xA702 with the Failed SOP Instance UID List.
scenario_fail_get_no_role_dcmqrscp() {
    start_dcmqrscp
    local d=$WORK/fail_get_no_role_dcmqrscp; mkdir -p "$d"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_DCMQRSCP"
    peer "$PY" "$HERE/peer_scu.py" "$HOST" "$P_DCMQRSCP" DCMQRSCP get-norole "$STUDY1_UID"
    fail_capture_stop fail_get_no_role_dcmqrscp.pcap "$P_DCMQRSCP"
    local f=$OUT/fail_get_no_role_dcmqrscp.pcap p=$P_DCMQRSCP
    expect_none "$f" "$p" 'Role Selection|C-STORE'
    expect "$f" "$p" 1 'C-GET-RQ'
    expect "$f" "$p" 1 '\(0000,0900\).*\(0xa702\)'
}

# --- user identity, asynchronous operations ---------------------------------

# User Identity type 2 (username "alice" + passcode "s3cret") in clear text:
# pynetdicom SCU (peer_scu.py identity) -> pynetdicom SCP (identity); C-ECHO.
scenario_fail_cleartext_credentials() {
    local d=$WORK/fail_cleartext_credentials; mkdir -p "$d"
    start_py_scp "$d" "$P_PYNET" identity
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_PYNET"
    peer "$PY" "$HERE/peer_scu.py" "$HOST" "$P_PYNET" PYSCP identity
    fail_capture_stop fail_cleartext_credentials.pcap "$P_PYNET"
    stop_pid "$PYSCP_PID"
    local f=$OUT/fail_cleartext_credentials.pcap p=$P_PYNET
    expect "$f" "$p" 1 'Type: Username as a string in UTF-8 and passcode \(2\)'
    expect "$f" "$p" 1 'Primary Field: alice'
    expect "$f" "$p" 1 'Secondary Field: s3cret'
    expect "$f" "$p" 1 'C-ECHO-RSP'
}

# Two outstanding requests with an asynchronous operations window of 1: a
# hand-written requestor (peer_raw.py two-echoes) proposes a window of 2/2,
# pynetdicom (peer_scp.py async1) grants 1/1 in its A-ASSOCIATE-AC, and the
# requestor sends C-ECHO-RQ IDs 1 and 2 in one TCP segment anyway; pynetdicom
# answers both, one after the other.
scenario_fail_async_window() {
    local d=$WORK/fail_async_window; mkdir -p "$d"
    start_py_scp "$d" "$P_PYNET" async1
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_PYNET"
    peer "$PY" "$HERE/peer_raw.py" two-echoes "$HOST" "$P_PYNET" PYSCP
    fail_capture_stop fail_async_window.pcap "$P_PYNET"
    stop_pid "$PYSCP_PID"
    local f=$OUT/fail_async_window.pcap p=$P_PYNET
    expect "$f" "$p" 1 'Maximum-number-operations-invoked: 2'
    expect "$f" "$p" 1 'Maximum-number-operations-invoked: 1'
    expect_filter "$f" "$p" 1 'dicom.pdu.type == 2 && dicom.assoc.item.type == 0x53'
    expect "$f" "$p" 2 '^DICOM, C-ECHO-RQ ID=[12]$'
    expect_filter "$f" "$p" 1 "count(dicom.pdu.type) == 2 && tcp.dstport == $p"
    expect "$f" "$p" 2 '^DICOM, C-ECHO-RSP ID=[12] \(Success\)$'
}

# --- workflows: C-MOVE sub-associations, storage commitment ------------------

# The destination rejects the sub-association: Orthanc's REJDEST is
# 127.0.0.1:P_PYNET, where peer_scp.py strict-called answers only to the
# called AE title PYSCP: A-ASSOCIATE-RJ 1/1/7 to Orthanc's REJDEST; Orthanc
# answers the C-MOVE 0xC000 without counts.
scenario_fail_move_sub_rejected_orthanc() {
    start_orthanc
    local d=$WORK/fail_move_sub_rejected_orthanc; mkdir -p "$d"
    start_py_scp "$d" "$P_PYNET" strict-called
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_ORTHANC or tcp port $P_PYNET"
    move_study1 "$P_ORTHANC" ORTHANC REJDEST
    fail_capture_stop fail_move_sub_rejected_orthanc.pcap "$P_ORTHANC $P_PYNET"
    stop_pid "$PYSCP_PID"
    local f=$OUT/fail_move_sub_rejected_orthanc.pcap p="$P_ORTHANC $P_PYNET"
    expect "$f" "$p" 1 'Called +AE Title: REJDEST'
    expect "$f" "$p" 1 'Reason: Called AE title not recognized'
    expect "$f" "$p" 1 '\(0000,0900\).*\(0xc000\)'
    expect_none "$f" "$p" 'C-STORE'
}

# start_qrscp DIR DEST...: pynetdicom's C-MOVE SCP (peer_qrscp.py, AE PYQRSCP)
# on P_QRSCP holding study 1; sets QRSCP_PID.
start_qrscp() {
    local dir=$1; shift
    ns_prefix "$NS"
    start_bg "$dir/qrscp.log" "${RUN[@]}" "$PY" "$HERE/peer_qrscp.py" "$HOST" "$P_QRSCP" \
        "$@" -- "${CT[@]}"
    QRSCP_PID=$BG_PID
    wait_listen "$NS" "$P_QRSCP"
}

# pynetdicom's C-MOVE SCP sends the objects to another AE than the one asked
# for: its STORESCP destination is configured as 127.0.0.1:P_MOVE_DEST with
# the called AE title ARCHIVE2, and storescp accepts any called AE title.
# The C-STORE-RQs name PYQRSCP itself as Move Originator AE Title.
scenario_fail_move_wrong_ae_pynetdicom() {
    local d=$WORK/fail_move_wrong_ae_pynetdicom; mkdir -p "$d"
    start_storescp "$d" "$P_MOVE_DEST"
    start_qrscp "$d" "STORESCP=$HOST:$P_MOVE_DEST:ARCHIVE2"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_QRSCP or tcp port $P_MOVE_DEST"
    move_study1 "$P_QRSCP" PYQRSCP STORESCP
    fail_capture_stop fail_move_wrong_ae_pynetdicom.pcap "$P_QRSCP $P_MOVE_DEST"
    stop_pid "$QRSCP_PID"
    stop_pid "$SCP_PID"
    check_received "$d/recv" 3
    local f=$OUT/fail_move_wrong_ae_pynetdicom.pcap p="$P_QRSCP $P_MOVE_DEST"
    expect "$f" "$p" 1 '\(0000,0600\).*Move Destination +STORESCP'
    expect "$f" "$p" 1 'Called +AE Title: ARCHIVE2'
    expect "$f" "$p" 3 '\(0000,1030\).*Move Originator Application Entity Title +PYQRSCP'
    expect "$f" "$p" 1 'C-MOVE-RSP.*Success'
}

# pynetdicom's C-MOVE SCP and a destination that rejects its association
# (REJDEST: peer_scp.py strict-called, as above): pynetdicom answers the
# C-MOVE 0xA801 (Move Destination unknown) although it knew the destination.
scenario_fail_move_sub_rejected_pynetdicom() {
    local d=$WORK/fail_move_sub_rejected_pynetdicom; mkdir -p "$d"
    start_py_scp "$d" "$P_PYNET" strict-called
    start_qrscp "$d" "REJDEST=$HOST:$P_PYNET"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_QRSCP or tcp port $P_PYNET"
    move_study1 "$P_QRSCP" PYQRSCP REJDEST
    fail_capture_stop fail_move_sub_rejected_pynetdicom.pcap "$P_QRSCP $P_PYNET"
    stop_pid "$QRSCP_PID"
    stop_pid "$PYSCP_PID"
    local f=$OUT/fail_move_sub_rejected_pynetdicom.pcap p="$P_QRSCP $P_PYNET"
    expect "$f" "$p" 1 'Reason: Called AE title not recognized'
    expect "$f" "$p" 1 '\(0000,0900\).*\(0xa801\)'
}

# The C-MOVE of move_orthanc.pcap (study 1 to STORESCP, Success, 3 completed)
# captured on Orthanc's port only, as one often does: the sub-association to
# 11113 is outside the capture.
scenario_fail_move_capture_filtered() {
    start_orthanc
    local d=$WORK/fail_move_capture_filtered; mkdir -p "$d"
    start_storescp "$d" "$P_MOVE_DEST"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_ORTHANC"
    move_study1 "$P_ORTHANC" ORTHANC STORESCP
    fail_capture_stop fail_move_capture_filtered.pcap "$P_ORTHANC"
    stop_pid "$SCP_PID"
    check_received "$d/recv" 3
    local f=$OUT/fail_move_capture_filtered.pcap p=$P_ORTHANC
    expect "$f" "$p" 1 'C-MOVE-RSP ID=1 C=3'
    expect_none "$f" "$p" 'C-STORE'
}

# commit_scu PORT CALLED OPTION... FILE...: peer_commit.py scu (AE MODALITY,
# report listener on P_MODALITY unless --no-listen), exit status logged.
commit_scu() {
    local port=$1 called=$2; shift 2
    peer_rc "$PY" "$HERE/peer_commit.py" scu "$HOST" "$port" "$called" "$P_MODALITY" "$@"
}

# Storage commitment with a failure: MODALITY asks Orthanc for ct1 and for an
# instance Orthanc never received (1.2.826.0.1.3680043.8.498.999); Orthanc's
# report (event type 2, on a reverse association) lists it in the Failed SOP
# Sequence, Failure Reason 0x0112 (no such object instance).
scenario_fail_commitment_failed_refs() {
    start_orthanc
    local d=$WORK/fail_commitment_failed_refs; mkdir -p "$d"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_ORTHANC or tcp port $P_MODALITY"
    commit_scu "$P_ORTHANC" ORTHANC "${CT[0]}" "1.2.840.10008.5.1.4.1.1.2/1.2.826.0.1.3680043.8.498.999"
    fail_capture_stop fail_commitment_failed_refs.pcap "$P_ORTHANC $P_MODALITY"
    local f=$OUT/fail_commitment_failed_refs.pcap p="$P_ORTHANC $P_MODALITY"
    expect "$f" "$p" 1 '\(0000,1002\).*Event Type ID +2'
    expect "$f" "$p" 1 'Failed SOP Sequence'
}

# The reverse association is rejected: MODALITY's report listener accepts
# only the calling AE title PACS, so it rejects Orthanc (A-ASSOCIATE-RJ
# 1/1/3); no report reaches MODALITY.
scenario_fail_commitment_reverse_rejected() {
    start_orthanc
    local d=$WORK/fail_commitment_reverse_rejected; mkdir -p "$d"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_ORTHANC or tcp port $P_MODALITY"
    commit_scu "$P_ORTHANC" ORTHANC --reject-calling --wait 5 "${CT[0]}" "${CT[1]}"
    fail_capture_stop fail_commitment_reverse_rejected.pcap "$P_ORTHANC $P_MODALITY"
    local f=$OUT/fail_commitment_reverse_rejected.pcap p="$P_ORTHANC $P_MODALITY"
    expect "$f" "$p" 1 'N-ACTION-RSP'
    expect "$f" "$p" 1 'Reason: Calling AE title not recognized'
    expect_none "$f" "$p" 'N-EVENT-REPORT'
}

# The reverse association is refused: nothing listens on P_MODALITY (the
# modality's report listener is down); Orthanc's SYN is answered by RST.
scenario_fail_commitment_reverse_refused() {
    start_orthanc
    local d=$WORK/fail_commitment_reverse_refused; mkdir -p "$d"
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_ORTHANC or tcp port $P_MODALITY"
    commit_scu "$P_ORTHANC" ORTHANC --no-listen --wait 5 "${CT[0]}" "${CT[1]}"
    fail_capture_stop fail_commitment_reverse_refused.pcap "$P_ORTHANC $P_MODALITY"
    local f=$OUT/fail_commitment_reverse_refused.pcap p="$P_ORTHANC $P_MODALITY"
    expect "$f" "$p" 1 'N-ACTION-RSP'
    expect_filter "$f" "$p" 1 "tcp.flags.reset == 1 && tcp.srcport == $P_MODALITY"
    expect_none "$f" "$p" 'N-EVENT-REPORT'
}

# No report at all: pynetdicom's commitment SCP (peer_commit.py scp none)
# answers the N-ACTION Success and never reports; MODALITY keeps the
# association open 5 s for a report on it, then releases.
scenario_fail_commitment_no_report() {
    local d=$WORK/fail_commitment_no_report; mkdir -p "$d"
    start_commit_scp "$d" none
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_COMMIT or tcp port $P_MODALITY"
    commit_scu "$P_COMMIT" PYARCHIVE --same --wait 5 "${CT[0]}" "${CT[1]}"
    fail_capture_stop fail_commitment_no_report.pcap "$P_COMMIT $P_MODALITY"
    stop_pid "$COMMIT_PID"
    local f=$OUT/fail_commitment_no_report.pcap p="$P_COMMIT $P_MODALITY"
    expect "$f" "$p" 1 'N-ACTION-RSP'
    expect_none "$f" "$p" 'N-EVENT-REPORT'
}

# --- cut out of existing captures --------------------------------------------

# source_capture NAME: path of an existing capture (this run's $OUT, else the
# committed one next to this script).
source_capture() {
    local f
    for f in "$OUT/$1" "$HERE/$1"; do
        [[ -s $f ]] && { printf '%s\n' "$f"; return 0; }
    done
    die "$1 not found in $OUT or $HERE: run its scenario first"
}

# derived_done NAME "PORT...": register a capture made from another one.
derived_done() {
    CAP_PORTS[$1]=$2
    CAP_ORDER+=("$1")
    CAP_FILTER[$1]=$FAIL_FILTER
    log "wrote $OUT/$1 ($(stat -c %s "$OUT/$1") bytes)"
}

# A missing segment: the MR association (the second TCP connection) of
# store_mtu1500.pcap without its third full-size (1448-byte) segment from
# storescu, in the middle of the MR data set.
scenario_fail_capture_gap() {
    [[ $HAVE_TSHARK -eq 1 ]] || { warn "fail_capture_gap needs tshark: skipped"; return 0; }
    local d=$WORK/fail_capture_gap src n; mkdir -p "$d"
    src=$(source_capture store_mtu1500.pcap)
    tshark -r "$src" -Y 'tcp.stream == 1' -F pcap -w "$d/mr.pcap" 2>/dev/null
    n=$(tshark -r "$d/mr.pcap" -Y "tcp.dstport == $P_SCP && tcp.len == 1448" \
        -T fields -e frame.number 2>/dev/null | sed -n 3p)
    [[ -n $n ]] || die "fail_capture_gap: no third 1448-byte segment in $src"
    editcap "$d/mr.pcap" "$OUT/fail_capture_gap.pcap" "$n"
    log "    dropped frame $n of the MR association of $(basename "$src")"
    derived_done fail_capture_gap.pcap "$P_SCP"
    local f=$OUT/fail_capture_gap.pcap p=$P_SCP
    expect_filter "$f" "$p" 1 'tcp.analysis.lost_segment'
    expect "$f" "$p" 1 'A-RELEASE response'
}

# Snap length 200: store.pcap with every frame cut to 200 bytes (134 bytes of
# TCP payload), as `tcpdump -s 200` would have written it.
scenario_fail_snaplen() {
    local src; src=$(source_capture store.pcap)
    editcap -s 200 "$src" "$OUT/fail_snaplen.pcap"
    derived_done fail_snaplen.pcap "$P_SCP"
    expect_filter "$OUT/fail_snaplen.pcap" "$P_SCP" 10 'frame.cap_len < frame.len'
}

# A capture that starts in the middle of an association: the MR association
# of store.pcap from the frame after the A-ASSOCIATE-AC (no SYN, no
# A-ASSOCIATE-RQ/AC): C-STORE-RQ + data set, C-STORE-RSP, release.
scenario_fail_partial_association() {
    [[ $HAVE_TSHARK -eq 1 ]] || { warn "fail_partial_association needs tshark: skipped"; return 0; }
    local d=$WORK/fail_partial_association src ac; mkdir -p "$d"
    src=$(source_capture store.pcap)
    tshark -r "$src" -Y 'tcp.stream == 1' -F pcap -w "$d/mr.pcap" 2>/dev/null
    ac=$(tshark -r "$d/mr.pcap" -d "tcp.port==$P_SCP,dicom" -Y 'dicom.pdu.type == 2' \
         -T fields -e frame.number 2>/dev/null | head -1)
    [[ -n $ac ]] || die "fail_partial_association: no A-ASSOCIATE-AC in $src"
    editcap "$d/mr.pcap" "$OUT/fail_partial_association.pcap" "1-$ac"
    log "    dropped frames 1-$ac of the MR association of $(basename "$src")"
    derived_done fail_partial_association.pcap "$P_SCP"
    local f=$OUT/fail_partial_association.pcap p=$P_SCP
    expect_none "$f" "$p" 'PDU Type: ASSOC'
    expect "$f" "$p" 1 'A-ASSOCIATE request not found in capture'
    expect "$f" "$p" 1 'C-STORE-RQ'
    expect "$f" "$p" 1 'A-RELEASE response'
}

# A capture that begins in the middle of a C-GET: get_orthanc.pcap from the
# frame after the first C-STORE-RSP (no A-ASSOCIATE, no C-GET-RQ, no first
# C-STORE): two C-STOREs, their responses, the C-GET's final response
# (3 completed) whose request is before the capture, the release.
scenario_fail_get_partial() {
    [[ $HAVE_TSHARK -eq 1 ]] || { warn "fail_get_partial needs tshark: skipped"; return 0; }
    local src rsp
    src=$(source_capture get_orthanc.pcap)
    rsp=$(tshark -r "$src" -d "tcp.port==$P_ORTHANC,dicom" -Y dicom -T fields \
          -e frame.number -e _ws.col.Info 2>/dev/null | awk '/C-STORE-RSP/ {print $1; exit}')
    [[ -n $rsp ]] || die "fail_get_partial: no C-STORE-RSP in $src"
    editcap "$src" "$OUT/fail_get_partial.pcap" "1-$rsp"
    log "    dropped frames 1-$rsp of $(basename "$src")"
    derived_done fail_get_partial.pcap "$P_ORTHANC"
    local f=$OUT/fail_get_partial.pcap p=$P_ORTHANC
    expect_none "$f" "$p" 'C-GET-RQ|PDU Type: ASSOC'
    expect "$f" "$p" 2 'C-STORE-RQ'
    expect "$f" "$p" 1 'C-GET-RSP'
}

# --- TCP health --------------------------------------------------------------

# Packet loss: the same C-STOREs as store.pcap through a token bucket (tc tbf)
# on the namespace loopback (MTU 1500) whose queue is too short for the bursts, so that
# packets are dropped before the capture point and TCP retransmits them.  The
# capture shows the holes (ALLOW_LOSS: they are the point) and the
# retransmissions that fill them.
scenario_fail_tcp_loss() {
    if [[ -z $NS ]]; then
        warn "fail_tcp_loss needs ip netns (tc on a private loopback): skipped"
        return 0
    fi
    local d=$WORK/fail_tcp_loss; mkdir -p "$d"
    start_storescp "$d" "$P_SCP"
    # MTU 1500: the loopback's 64 KiB packets would never fit the bucket.
    in_ns ip link set lo mtu 1500
    in_ns tc qdisc add dev lo root tbf rate 40mbit burst 16k limit 24k
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_SCP"
    peer "$DCMTK/storescu" -v -R +C -xe -aet STORESCU -aec STORESCP \
        "$HOST" "$P_SCP" "${CT[@]}" "$BIG"
    ALLOW_LOSS=1 fail_capture_stop fail_tcp_loss.pcap "$P_SCP"
    in_ns tc qdisc del dev lo root
    in_ns ip link set lo mtu 65536
    stop_pid "$SCP_PID"
    check_received "$d/recv" 4
    local f=$OUT/fail_tcp_loss.pcap
    expect "$f" "$P_SCP" 4 'C-STORE-RSP'
    expect_filter "$f" "$P_SCP" 1 "tcp.analysis.retransmission || tcp.analysis.fast_retransmission"
}

# A zero window: storescp sleeps 2 s on each 128 KiB PDU of a C-STORE
# (--sleep-during) with a 16 KiB receive buffer, so its TCP window closes
# while storescu still has data to send; storescu waits and then goes on.
scenario_fail_tcp_zero_window() {
    if [[ -z $NS ]]; then
        warn "fail_tcp_zero_window needs ip netns (a private tcp_rmem): skipped"
        return 0
    fi
    local d=$WORK/fail_tcp_zero_window; mkdir -p "$d"
    local rmem
    rmem=$(in_ns sysctl -n net.ipv4.tcp_rmem)
    in_ns sysctl -q -w net.ipv4.tcp_rmem="4096 16384 16384"
    start_storescp "$d" "$P_SCP" --max-pdu 131072 --sleep-during 2
    capture_start "$NS" lo "$d/cap.pcap" "tcp port $P_SCP"
    peer "$DCMTK/storescu" -v -aet STORESCU -aec STORESCP "$HOST" "$P_SCP" "$BIG"
    fail_capture_stop fail_tcp_zero_window.pcap "$P_SCP"
    stop_pid "$SCP_PID"
    in_ns sysctl -q -w net.ipv4.tcp_rmem="$rmem"
    check_received "$d/recv" 1
    local f=$OUT/fail_tcp_zero_window.pcap
    expect "$f" "$P_SCP" 1 'C-STORE-RSP'
    expect_filter "$f" "$P_SCP" 1 "tcp.analysis.zero_window"
}

# ---------------------------------------------------------------------------

main() {
    local scenarios=() s t
    (($#)) || set -- "${ALL_SCENARIOS[@]}"
    for s in "$@"; do
        if [[ $s != fail ]]; then
            scenarios+=("$s")
            continue
        fi
        for t in "${ALL_SCENARIOS[@]}"; do   # "fail": every failure sample
            if [[ $t == fail_* ]]; then scenarios+=("$t"); fi
        done
    done
    for s in "${scenarios[@]}"; do
        declare -F "scenario_$s" >/dev/null || die "unknown scenario '$s'"
    done
    local tool
    for tool in "$DCMTK/storescu" "$DCMTK/storescp" "$DCMTK/echoscu" \
                "$DCMTK/findscu" "$DCMTK/movescu" "$DCMTK/getscu" "$DCMTK/dcmdump" \
                "$DCMTK/dcmqrscp" "$ORTHANC_BIN" tcpdump dumpcap editcap timeout ss; do
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
    stop_dcmqrscp

    # What tshark's DICOM dissector sees in each capture written by this run.
    local name ports
    if [[ $HAVE_TSHARK -eq 1 ]]; then
        for name in "${CAP_ORDER[@]}"; do
            ports=${CAP_PORTS[$name]}
            printf '\n%s: %s frames, DICOM on tcp port %s\n' "$name" \
                "$(capinfos -c -M "$OUT/$name" | sed -n 's/.*packets: *//p')" "$ports"
            # shellcheck disable=SC2086  # ports is a list
            SUMMARY_FILTER=${CAP_FILTER[$name]:-} summary "$OUT/$name" $ports | sed 's/^/    /'
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
