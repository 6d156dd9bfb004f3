"""Apache Spark support: the session, an Ibis backend that materialises working tables, distributed per-text work.

Detection's table work is written once in Ibis; on Spark it runs through
:class:`SparkBackend`, Ibis' PySpark backend with the two things the pipeline
needs that the stock backend lacks:

* ``create_table(..., temp=True)``: the pipeline materialises intermediate
  tables once and reads them many times.  Here that becomes a locally
  checkpointed DataFrame (memory, spilling to disk, lineage cut) registered as
  a session temp view, so nothing is written to the warehouse and later queries
  neither recompute it nor re-analyse the plans below it.
* ``hash()`` compiles to Spark's 64-bit ``xxhash64`` instead of the 32-bit
  ``hash``: the pipeline keys distinct prompts by hash, and 32 bits collide
  thousands of times over the tens of millions of prompts of a large log.

Per-text work (capability, chain-of-thought, template hash, MinHash bands) runs
on the executors with ``mapInArrow`` (:func:`map_arrow`), over Arrow batches,
with the same functions the DuckDB engine runs locally.  Graph work (community
detection) stays on the driver: it runs over the reduced account graph (one
node per account, edges bounded per key), which fits one machine even at 100x
the reported campaign (see docs/scale.md).

Nothing here is imported unless ``--engine spark`` is chosen; pyspark is the
optional ``spark`` extra.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import ibis.expr.operations as ops
import ibis.expr.types as ir
import pyarrow as pa
import pyspark
import sqlglot.expressions as sge
from ibis.backends.pyspark import Backend as _PySparkBackend
from ibis.backends.sql.compilers.base import NULL
from ibis.backends.sql.compilers.pyspark import PySparkCompiler
from pyspark.sql import DataFrame, SparkSession

DEFAULT_MASTER = "local[*]"
_SPARK4 = int(pyspark.__version__.split(".")[0]) >= 4


class _Compiler(PySparkCompiler):
    """Ibis' PySpark compiler with a 64-bit ``hash()``."""

    # Simple ops become visit_* methods when the class is created (a plain visit_Hash would be overwritten).
    SIMPLE_OPS = {**PySparkCompiler.SIMPLE_OPS, ops.Hash: "xxhash64"}

    def visit_Mode(self, op: Any, *, arg: Any, where: Any) -> Any:  # noqa: N802 - Ibis' visitor naming
        # Spark >= 3.4 has mode(); on 4.x its second argument makes ties return the smallest value.
        if where is not None:
            arg = self.if_(where, arg, NULL)
        return self.f.mode(arg, sge.true()) if _SPARK4 else self.f.mode(arg)


class SparkBackend(_PySparkBackend):
    """Ibis PySpark backend whose temporary tables are checkpointed temp views."""

    compiler = _Compiler()

    def create_table(self, name: str, /, obj: Any = None, *, temp: bool | None = None, overwrite: bool = False, **kw: Any) -> ir.Table:
        if not temp:
            return super().create_table(name, obj, overwrite=overwrite, **kw)
        if obj is None:
            raise ValueError(f"create_table({name!r}, temp=True) needs the rows (obj)")
        df = self.to_spark(obj)
        if not overwrite and self._session.catalog.tableExists(name):
            raise ValueError(f"temporary table {name!r} exists (pass overwrite=True)")
        _unpersist_view(self._session, name)
        # Materialised now, as DuckDB's create_table does, so the timing lands in this stage.  A local
        # checkpoint, not persist(): a persisted frame keeps its whole lineage, and every later query that
        # reads the view re-analyses (and prints, for the SQL UI) the plans of all the tables below it,
        # which grew past the driver's heap on the demo (java.lang.OutOfMemoryError in explainString).
        df = df.localCheckpoint(eager=True)  # kept in memory and on disk (RDD local-checkpoint default)
        df.createOrReplaceTempView(name)
        return self.table(name)

    def to_spark(self, obj: Any) -> DataFrame:
        """A Spark DataFrame for an Ibis expression, an Arrow table or a pandas frame."""
        if isinstance(obj, ir.Table):
            self._run_pre_execute_hooks(obj)
            return self._session.sql(self.compile(obj))
        if isinstance(obj, DataFrame):
            return obj
        if isinstance(obj, pa.Table):
            return arrow_to_spark(self._session, obj)
        return self._session.createDataFrame(obj)

    def from_spark(self, df: DataFrame, name: str) -> ir.Table:
        """Register a Spark DataFrame as a checkpointed temp view and return it as an Ibis table."""
        return self.create_table(name, df, temp=True, overwrite=True)


def _unpersist_view(session: SparkSession, name: str) -> None:
    # Overwriting a view leaves its old blocks in executor memory until the driver drops the frame (GC).
    if session.catalog.tableExists(name):
        try:
            session.table(name).unpersist()
        except Exception:  # noqa: BLE001 - a view that cannot be resolved any more has nothing cached
            pass


def arrow_to_spark(session: SparkSession, table: pa.Table) -> DataFrame:
    """A Spark DataFrame from an Arrow table (Arrow-native on pyspark 4, via pandas on 3.5)."""
    import ibis
    from ibis.backends.pyspark.datatypes import PySparkSchema

    schema = PySparkSchema.from_ibis(ibis.Schema.from_pyarrow(table.schema))
    try:
        return session.createDataFrame(table, schema=schema)
    except (TypeError, ValueError):
        # pyspark < 4 has no Arrow input; Arrow-enabled pandas conversion is the fast path there.
        return session.createDataFrame(table.to_pandas(), schema=schema)


def session(master: str | None = None, app_name: str = "distillwatch", conf: dict[str, str] | None = None) -> SparkSession:
    """A Spark session: ``master`` (or ``$SPARK_MASTER``, else ``local[*]``), UTC, Arrow transfers on.

    On a cluster, pass ``spark://host:7077``, ``yarn`` or ``k8s://...`` and set
    executor resources through ``conf`` or ``spark-defaults.conf`` as usual;
    executors need distillwatch installed (``pip install distillwatch``) because
    per-text work imports it there.
    """
    builder = SparkSession.builder.appName(app_name)
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.adaptive.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
    }
    resolved_master = master or os.environ.get("SPARK_MASTER") or DEFAULT_MASTER
    if resolved_master.startswith("local") and not os.environ.get("PYSPARK_PYTHON"):
        # Local workers must run this interpreter (its venv has distillwatch), not whatever `python3` is on
        # PATH; PySpark reads the variable (not spark.pyspark.python) when it starts the context.
        os.environ["PYSPARK_PYTHON"] = sys.executable
    if resolved_master.startswith("local"):
        # One machine: the default 200 shuffle partitions are 200 tiny tasks per query; on a cluster keep Spark's.
        settings["spark.sql.shuffle.partitions"] = os.environ.get("DISTILLWATCH_SPARK_PARTITIONS", str(4 * (os.cpu_count() or 2)))
    settings.update(conf or {})
    builder = builder.master(resolved_master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def connect(master: str | None = None, conf: dict[str, str] | None = None) -> SparkBackend:
    """The Ibis backend the pipeline uses with ``--engine spark``."""
    # Not from_connection(): that always builds the stock backend class.  register_options()
    # is what `ibis.pyspark` does on first use; the compiler reads `ibis.options.pyspark`.
    SparkBackend.register_options()
    return SparkBackend().connect(session(master, conf=conf))


def is_spark(con: Any) -> bool:
    return isinstance(con, SparkBackend)


def map_arrow(
    con: SparkBackend,
    table: ir.Table,
    fn: Callable[[pa.RecordBatch], pa.RecordBatch | pa.Table],
    out_schema: pa.Schema,
    name: str,
) -> ir.Table:
    """Apply ``fn`` to every Arrow batch of ``table`` on the executors (``mapInArrow``); a persisted Ibis table.

    ``fn`` must be a module-level function (it is pickled to the executors) that
    takes a batch and returns a batch or table with ``out_schema``.
    """
    import ibis
    from ibis.backends.pyspark.datatypes import PySparkSchema

    spark_schema = PySparkSchema.from_ibis(ibis.Schema.from_pyarrow(out_schema))

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            result = fn(batch)
            if isinstance(result, pa.RecordBatch):
                result = pa.Table.from_batches([result])
            yield from result.cast(out_schema).to_batches()

    df = con.to_spark(table).mapInArrow(run, spark_schema)
    return con.from_spark(df, name)


__all__ = ["SparkBackend", "arrow_to_spark", "connect", "is_spark", "map_arrow", "session"]
