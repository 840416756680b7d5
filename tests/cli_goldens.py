"""The linkerd CLI's own outputs, shared by the table renderer's tests and the CLI parsers' tests.

Text goldens from linkerd/linkerd2's viz/cmd/testdata, cli/cmd/testdata and
test/integration/install/testdata, as quoted in reference/linkerd-formats.md §2 and §6.
"""

STAT_ONE = (
    "NAME    MESHED   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN\n"
    "emoji      1/2   100.00%   2.0rps         123ms         123ms         123ms        123\n"
)

STAT_ALL = (
    "NAMESPACE    NAME    MESHED   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN\n"
    "emojivoto1   emoji      1/2   100.00%   2.0rps         123ms         123ms         123ms        123\n"
)

STAT_POD = (
    "NAME     STATUS   MESHED   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN\n"
    "emoji   Running      1/1   100.00%   2.0rps         123ms         123ms         123ms        123\n"
)

STAT_WIDE = (
    "NAME    MESHED   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN   READ_BYTES/SEC   WRITE_BYTES/SEC\n"
    "emoji      1/2   100.00%   2.0rps         123ms         123ms         123ms        123           2.0B/s            2.0B/s\n"
)

STAT_TS = (
    "NAME        APEX        LEAF        WEIGHT   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99\n"
    "foo-split   apex_name   service-1     900m   100.00%   2.0rps         123ms         123ms         123ms\n"
    "foo-split   apex_name   service-2     100m   100.00%   2.0rps         123ms         123ms         123ms\n"
)

ROUTES_ONE = (
    "ROUTE       SERVICE   SUCCESS      RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99\n"
    "/a           foobar   100.00%   1.5rps         123ms         123ms         123ms\n"
    "/b           foobar   100.00%   1.0rps         123ms         123ms         123ms\n"
    "/c           foobar         -        -             -             -             -\n"
    "[DEFAULT]    foobar   100.00%   0.5rps         123ms         123ms         123ms\n"
    "\n"
)

ROUTES_WIDE = (
    "ROUTE       SERVICE   EFFECTIVE_SUCCESS   EFFECTIVE_RPS   ACTUAL_SUCCESS   ACTUAL_RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99\n"
    "/a           foobar             100.00%          1.5rps          100.00%       1.5rps         123ms         123ms         123ms\n"
    "/b           foobar             100.00%          1.0rps          100.00%       1.0rps         123ms         123ms         123ms\n"
    "/c           foobar                   -               -                -            -             -             -             -\n"
    "[DEFAULT]    foobar             100.00%          0.5rps          100.00%       0.5rps         123ms         123ms         123ms\n"
    "\n"
)

EDGES_ONE = (
    "SRC                DST                  SRC_NS      DST_NS      SECURED\n"
    "vote-bot           web                  emojivoto   emojivoto   √      \n"
    "web                emoji                emojivoto   emojivoto   √      \n"
    "web                voting               emojivoto   emojivoto   √      \n"
    "linkerd-identity   linkerd-prometheus   linkerd     linkerd     √      \n"
)

EDGES_WIDE = (
    "SRC                DST                  SRC_NS      DST_NS      CLIENT_ID                  SERVER_ID                    SECURED\n"
    "vote-bot           web                  emojivoto   emojivoto   default.emojivoto          web.emojivoto                √      \n"
    "web                emoji                emojivoto   emojivoto   web.emojivoto              emoji.emojivoto              √      \n"
    "web                voting               emojivoto   emojivoto   web.emojivoto              voting.emojivoto             √      \n"
    "linkerd-identity   linkerd-prometheus   linkerd     linkerd     linkerd-identity.linkerd   linkerd-prometheus.linkerd   √      \n"
)

TAP_BUSY = (
    "req id=1:0 proxy=out src=0.0.0.1:0 dst=[ff01::1]:0 tls=true :method=GET :authority=localhost :path=/some/path\n"
    "end id=1:0 proxy=out src=0.0.0.1:0 dst=[ff01::1]:0 tls= grpc-status=Code(666) duration=100000000µs response-length=1337B\n"
)

TAP_BUSY_WIDE = (
    "req id=1:0 proxy=out src=0.0.0.1:0 dst=[ff01::1]:0 tls=true :method=GET :authority=localhost :path=/some/path dst_pod=my-pod dst_tls=true\n"
    "end id=1:0 proxy=out src=0.0.0.1:0 dst=[ff01::1]:0 tls= grpc-status=Code(666) duration=100000000µs response-length=1337B\n"
)

CHECK_GOLDEN = (
    "category\n"
    "--------\n"
    "√ check1\n"
    "× check2\n"
    "    This should contain instructions for fail\n"
    "    see https://linkerd.io/2/checks/#hint-anchor for hints\n"
    "\n"
)
