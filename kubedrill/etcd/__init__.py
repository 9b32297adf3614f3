"""etcd under test: TLS material (tls), clusters in containers (cluster), a JSON-gateway client
(client), etcdctl/etcdutl runs (tools), the locally built image (image) and the sweeper (sweep).

No Kubernetes is involved: these are standalone "external etcd" clusters configured the way
kubeadm configures its etcd members.
"""
