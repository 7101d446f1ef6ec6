"""HyperLogLogs compare by their registers (migrate/verify/hll.py), decoded from the bytes a
real server stores, sparse or dense."""

from __future__ import annotations

from migrate.lab.fleet import Fleet
from migrate.verify.hll import REGISTERS, registers, same_hyperloglog


def test_sparse_and_dense_forms_of_one_hyperloglog_are_the_same(lab: Fleet) -> None:
    client = lab.start("redis-7.0").client()
    client.pfadd("a", *[f"e{i}" for i in range(300)])
    client.pfadd("b", *[f"e{i}" for i in range(300)])
    client.execute_command("PFDEBUG", "TODENSE", "b")
    client.pfadd("c", *[f"e{i}" for i in range(301)])
    sparse, dense, other = client.get("a"), client.get("b"), client.get("c")
    assert sparse[4] == 1 and dense[4] == 0 and sparse != dense
    assert registers(sparse) is not None and len(registers(sparse) or b"") == REGISTERS
    assert registers(sparse) == registers(dense)
    assert sum(1 for r in registers(dense) or b"" if r) > 250
    assert same_hyperloglog(sparse, dense)
    assert not same_hyperloglog(sparse, other)
    assert registers(b"plain string") is None and not same_hyperloglog(b"HYLLx", b"HYLLx")
