"""``StreamExecutionEnvironment``: where a job is declared and from which it runs."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from fraudstream.common.configuration import Configuration
from fraudstream.common.typeinfo import RowTypeInfo, TypeInformation, Types
from fraudstream.common.types import Row
from fraudstream.common.watermark_strategy import WatermarkStrategy
from fraudstream.connectors.base import Source
from fraudstream.connectors.collection import CollectionSource
from fraudstream.datastream.checkpoint_config import CheckpointConfig
from fraudstream.datastream.data_stream import CloseableIterator, DataStream
from fraudstream.datastream.execution_mode import RuntimeExecutionMode
from fraudstream.exceptions import ConfigurationError, UnsupportedFeatureError
from fraudstream.runtime.clock import Clock, SystemClock
from fraudstream.runtime.gcscope import CONFIG_KEY as GC_CONFIG_KEY
from fraudstream.runtime.graph import Transformation
from fraudstream.runtime.job import JobRunner
from fraudstream.runtime.operators.sinks import CollectSinkOperator
from fraudstream.runtime.operators.sources import SourceOperator

__all__ = ["ExecutionConfig", "JobClient", "JobExecutionResult", "StreamExecutionEnvironment"]


class JobExecutionResult:
    """The outcome of a finished job."""

    def __init__(
        self, job_id: str, job_name: str, runtime_ms: int, counters: dict[str, int]
    ) -> None:
        self._job_id = job_id
        self._job_name = job_name
        self._runtime_ms = runtime_ms
        self.counters = counters

    def get_job_id(self) -> str:
        """The job's id."""
        return self._job_id

    def get_job_name(self) -> str:
        """The job's name."""
        return self._job_name

    def get_net_runtime(self) -> int:
        """Milliseconds the job ran."""
        return self._runtime_ms

    def get_all_accumulator_results(self) -> dict[str, int]:
        """Record counters of the sources and sinks."""
        return dict(self.counters)

    def __repr__(self) -> str:
        return f"JobExecutionResult(job_id={self._job_id!r}, net_runtime={self._runtime_ms} ms)"


class _Completed:
    """A future-like handle on a job running in a thread."""

    def __init__(self, thread: threading.Thread, outcome: dict[str, Any]) -> None:
        self._thread = thread
        self._outcome = outcome

    def result(self, timeout: float | None = None) -> JobExecutionResult:
        """Wait for the job; re-raise its failure."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the job is still running")
        if "error" in self._outcome:
            raise self._outcome["error"]
        result: JobExecutionResult = self._outcome["result"]
        return result


class JobClient:
    """Controls a job started with ``execute_async``."""

    def __init__(
        self, job_id: str, runner: JobRunner, thread: threading.Thread, outcome: dict[str, Any]
    ) -> None:
        self._job_id = job_id
        self._runner = runner
        self._thread = thread
        self._outcome = outcome

    def get_job_id(self) -> str:
        """The job's id."""
        return self._job_id

    def holds_checkpoint_directory(self) -> bool:
        """Whether the job has claimed its checkpoint directory and not yet released it."""
        return self._runner.holds_directory

    def get_job_status(self) -> str:
        """``RUNNING``, ``FINISHED``, ``FAILED`` or ``CANCELED``."""
        if self._thread.is_alive():
            return "RUNNING"
        if "error" in self._outcome:
            return "FAILED"
        return "CANCELED" if self._runner.cancelled else "FINISHED"

    def cancel(self) -> _Completed:
        """Stop the job at the next round."""
        self._runner.cancel()
        return _Completed(self._thread, self._outcome)

    def stop_with_savepoint(self, *args: Any, **kwargs: Any) -> _Completed:
        """Take a savepoint, then stop the job."""
        self._runner.savepoint_and_stop()
        return _Completed(self._thread, self._outcome)

    def trigger_savepoint(self, savepoint_directory: str | None = None) -> None:
        """Take a savepoint (``savepoint-<id>`` in the checkpoint directory) soon.

        ``savepoint_directory`` is accepted for PyFlink compatibility and must be
        ``None``: savepoints go beside the job's checkpoints.
        """
        if savepoint_directory is not None:
            raise ConfigurationError(
                "savepoints go to the checkpoint directory (savepoint-<id>); "
                "call trigger_savepoint() without a directory"
            )
        self._runner.request_savepoint()

    def get_checkpoint_stats(self) -> dict[str, Any]:
        """Completed checkpoints, the last one's duration (ms), size (bytes) and path."""
        return self._runner.checkpoint_stats()

    def get_job_execution_result(self) -> _Completed:
        """A handle whose ``result()`` waits for the job."""
        return _Completed(self._thread, self._outcome)


class ExecutionConfig:
    """Job-wide settings (``env.get_config()``)."""

    def __init__(self) -> None:
        self.auto_watermark_interval = 200
        self.global_job_parameters: dict[str, str] = {}

    def set_auto_watermark_interval(self, interval: int) -> ExecutionConfig:
        """Accepted: watermarks are emitted after every batch, which is at least as often."""
        self.auto_watermark_interval = interval
        return self

    def get_auto_watermark_interval(self) -> int:
        """The configured interval."""
        return self.auto_watermark_interval

    def set_global_job_parameters(
        self, global_job_parameters_map: dict[str, str]
    ) -> ExecutionConfig:
        """Parameters every function can read from its runtime context."""
        self.global_job_parameters = dict(global_job_parameters_map)
        return self

    def get_global_job_parameters(self) -> dict[str, str]:
        """The global job parameters."""
        return dict(self.global_job_parameters)

    def enable_object_reuse(self) -> ExecutionConfig:
        """Accepted for compatibility."""
        return self

    def disable_object_reuse(self) -> ExecutionConfig:
        """Accepted for compatibility."""
        return self


class StreamExecutionEnvironment:
    """Declares sources and runs jobs (``pyflink.datastream.StreamExecutionEnvironment``)."""

    def __init__(self, configuration: Configuration | None = None) -> None:
        self._configuration = Configuration(configuration)
        self._nodes: list[Transformation] = []
        self._parallelism = 1
        self._max_parallelism = 128
        self._checkpoint_interval_ms = 0
        self._checkpoint_config = CheckpointConfig()
        self._config = ExecutionConfig()
        self._clock: Clock = SystemClock()
        self._batch_size = 1024
        self._state_backend = "memory"
        self._state_dir: str | None = None
        self._worker_processes = 1
        self._restore_from: str | None = None

    @staticmethod
    def get_execution_environment(
        configuration: Configuration | None = None,
    ) -> StreamExecutionEnvironment:
        """A new environment running jobs on the embedded engine."""
        return StreamExecutionEnvironment(configuration)

    # -- settings ------------------------------------------------------------------------------
    @staticmethod
    def _check_parallelism(parallelism: Any) -> int:
        if isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 1:
            raise ConfigurationError(f"parallelism must be a positive int, got {parallelism!r}")
        if parallelism > 1024:
            raise ConfigurationError(
                f"parallelism {parallelism} is more than the 1024 workers supported"
            )
        return parallelism

    def set_parallelism(self, parallelism: int) -> StreamExecutionEnvironment:
        """Default parallelism of operators (one worker process per parallel instance)."""
        self._parallelism = self._check_parallelism(parallelism)
        return self

    def get_parallelism(self) -> int:
        """Default parallelism."""
        return self._parallelism

    def set_worker_processes(self, processes: int) -> StreamExecutionEnvironment:
        """Run parallel instances in this many processes (fraudstream extension; default 1).

        With ``n > 1`` and parallelism ``p > 1``, instance ``i`` of every operator runs
        in worker process ``i % min(n, p)``, forked when the job starts (Linux, macOS);
        records crossing a ``key_by`` between workers travel in batches. With 1, every
        instance runs in the calling process. ``execute_and_collect`` always runs in
        the calling process.
        """
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
            raise ConfigurationError(f"worker processes must be a positive int, got {processes!r}")
        self._worker_processes = processes
        return self

    def get_worker_processes(self) -> int:
        """How many worker processes jobs use (1: everything in the calling process)."""
        return self._worker_processes

    def set_max_parallelism(self, max_parallelism: int) -> StreamExecutionEnvironment:
        """Number of key groups (the upper bound for rescaling keyed state)."""
        if isinstance(max_parallelism, bool) or not isinstance(max_parallelism, int):
            raise ConfigurationError(f"max_parallelism must be an int, got {max_parallelism!r}")
        if not 1 <= max_parallelism <= 32768:
            raise ConfigurationError(
                f"max_parallelism must be in [1, 32768], got {max_parallelism}"
            )
        self._max_parallelism = max_parallelism
        return self

    def get_max_parallelism(self) -> int:
        """Number of key groups."""
        return self._max_parallelism

    def set_runtime_mode(self, execution_mode: RuntimeExecutionMode) -> StreamExecutionEnvironment:
        """Only STREAMING (and AUTOMATIC, which means streaming here) is supported."""
        if execution_mode is RuntimeExecutionMode.BATCH:
            raise UnsupportedFeatureError(
                "RuntimeExecutionMode.BATCH",
                "RuntimeExecutionMode.STREAMING (bounded inputs included)",
            )
        return self

    def set_stream_time_characteristic(self, characteristic: Any) -> StreamExecutionEnvironment:
        """Accepted for compatibility (event time is used where watermarks are assigned)."""
        return self

    def get_config(self) -> ExecutionConfig:
        """Job-wide settings."""
        return self._config

    def get_configuration(self) -> Configuration:
        """The configuration the environment was created with."""
        return self._configuration

    def configure(self, configuration: Configuration) -> StreamExecutionEnvironment:
        """Merge settings into the configuration."""
        for key, value in configuration.to_dict().items():
            self._configuration.set_string(key, value)
        return self

    def enable_checkpointing(self, interval: int, mode: Any = None) -> StreamExecutionEnvironment:
        """Take a checkpoint every ``interval`` ms (exactly-once sinks commit on them)."""
        if isinstance(interval, bool) or not isinstance(interval, int) or interval <= 0:
            raise ValueError(f"checkpoint interval must be a positive int of ms, got {interval!r}")
        self._checkpoint_interval_ms = interval
        return self

    def get_checkpoint_interval(self) -> int:
        """The checkpoint interval in ms (0 when disabled)."""
        return self._checkpoint_interval_ms

    def get_checkpoint_config(self) -> CheckpointConfig:
        """Where and how checkpoints are kept."""
        return self._checkpoint_config

    def set_state_backend(self, state_backend: Any) -> StreamExecutionEnvironment:
        """``HashMapStateBackend`` (memory, default) or ``EmbeddedRocksDBStateBackend`` (disk)."""
        from fraudstream.datastream.state_backend import StateBackend

        if not isinstance(state_backend, StateBackend):
            raise TypeError(f"expected a state backend, got {state_backend!r}")
        self._state_backend = state_backend.kind
        self._state_dir = state_backend.directory
        return self

    def get_state_backend(self) -> str:
        """``memory`` or ``rocksdb`` (fraudstream: the kind of the configured backend)."""
        return self._state_backend

    def set_processing_time_clock(self, clock: Clock) -> StreamExecutionEnvironment:
        """Inject the processing-time clock, e.g. a ``ManualClock`` (fraudstream extension)."""
        if not callable(getattr(clock, "now_ms", None)):
            raise TypeError(f"a clock needs now_ms() and wait(seconds), got {clock!r}")
        self._clock = clock
        return self

    def set_batch_size(self, batch_size: int) -> StreamExecutionEnvironment:
        """Records per source poll (fraudstream extension; default 1024)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self._batch_size = batch_size
        return self

    def restore_from(self, checkpoint: str | None) -> StreamExecutionEnvironment:
        """Restore the next run from a checkpoint path or ``latest`` (fraudstream extension)."""
        self._restore_from = checkpoint
        return self

    def _accept(self, *args: Any, **kwargs: Any) -> StreamExecutionEnvironment:
        return self

    # Deployment settings of a Flink cluster: meaningless for the embedded engine.
    add_jars = add_classpaths = add_python_file = add_python_archive = _accept
    set_python_executable = set_python_requirements = add_default_kryo_serializer = _accept
    register_type = register_type_with_kryo_serializer = set_buffer_timeout = _accept
    disable_operator_chaining = _accept

    # -- sources -------------------------------------------------------------------------------
    def _add(self, node: Transformation) -> Transformation:
        node.id = len(self._nodes) + 1
        self._nodes.append(node)
        return node

    def _error_routing(
        self, node: Transformation, factory: Callable[[str, str | None], Any]
    ) -> Callable[[str, str | None], Any]:
        def build(name: str, uid: str | None) -> Any:
            operator = factory(name, uid)
            operator.error_tag = getattr(node, "error_tag", None)
            return operator

        return build

    def _source(
        self,
        source: Source[Any],
        name: str,
        strategy: WatermarkStrategy | None,
        type_info: TypeInformation | None,
    ) -> DataStream:
        if type_info is not None and not isinstance(type_info, TypeInformation):
            raise TypeError(f"type_info must be a TypeInformation, got {type_info!r}")
        node = Transformation("source", name, output_type=type_info or Types.PICKLED_BYTE_ARRAY())
        node.factory = lambda n, u: SourceOperator(n, u, source, strategy)
        if source.max_parallelism is not None:
            node.max_parallelism = source.max_parallelism
        return DataStream(self, self._add(node))

    def from_collection(
        self, collection: Sequence[Any], type_info: TypeInformation | None = None
    ) -> DataStream:
        """A bounded stream of the elements of ``collection``, in order."""
        if isinstance(collection, (str, bytes)) or not hasattr(collection, "__iter__"):
            raise TypeError(f"from_collection expects a list of elements, got {collection!r}")
        elements = list(collection)
        if type_info is not None:
            if not isinstance(type_info, TypeInformation):
                raise TypeError(f"type_info must be a TypeInformation, got {type_info!r}")
            for index, element in enumerate(elements):
                try:
                    type_info.check(element)
                except TypeError as exc:
                    raise TypeError(f"element {index} of the collection: {exc}") from exc
            if isinstance(type_info, RowTypeInfo):
                elements = [_named_row(element, type_info) for element in elements]
        return self._source(CollectionSource(elements), "Collection Source", None, type_info)

    def from_source(
        self,
        source: Source[Any],
        watermark_strategy: WatermarkStrategy,
        source_name: str,
        type_info: TypeInformation | None = None,
    ) -> DataStream:
        """A stream read from a connector ``source`` with a watermark strategy."""
        if not isinstance(source, Source):
            raise TypeError(
                f"from_source expects a fraudstream Source (fraudstream.connectors), got {source!r}"
            )
        if not isinstance(watermark_strategy, WatermarkStrategy):
            raise TypeError(f"expected a WatermarkStrategy, got {watermark_strategy!r}")
        strategy = (
            None
            if watermark_strategy.out_of_orderness_ms is None
            and (watermark_strategy.timestamp_assigner is None)
            else watermark_strategy
        )
        return self._source(source, str(source_name), strategy, type_info)

    def add_source(
        self,
        source_func: Any,
        source_name: str = "Custom Source",
        type_info: TypeInformation | None = None,
    ) -> DataStream:
        """A stream read from a connector source (no watermarks)."""
        if isinstance(source_func, Source):
            return self._source(source_func, source_name, None, type_info)
        raise UnsupportedFeatureError(
            "add_source with a SourceFunction",
            "from_source / add_source with fraudstream.connectors sources",
        )

    def read_text_file(self, file_path: str, charset_name: str = "UTF-8") -> DataStream:
        """A bounded stream of the lines of a text file."""
        from fraudstream.connectors.text import TextLineSource

        return self._source(
            TextLineSource(file_path, charset_name), f"Text File {file_path}", None, Types.STRING()
        )

    # -- running ---------------------------------------------------------------------------------
    def _runner(self, nodes: list[Transformation], name: str) -> JobRunner:
        if not nodes:
            raise ConfigurationError(
                "no operators in the job: add a sink (print, sink_to, add_sink) before execute()"
            )
        return JobRunner(
            nodes,
            name=name,
            parallelism=self._parallelism,
            max_parallelism=self._max_parallelism,
            clock=self._clock,
            batch_size=self._batch_size,
            checkpoint_interval_ms=self._checkpoint_interval_ms,
            checkpoint_config=self._checkpoint_config,
            state_backend=self._state_backend,
            job_parameters=self._config.global_job_parameters,
            restore_from=self._restore_from,
            state_dir=self._state_dir,
            worker_processes=self._worker_processes,
            long_lived_state_gc=self._configuration.get_boolean(GC_CONFIG_KEY, False),
        )

    def _take_nodes(self) -> list[Transformation]:
        nodes, self._nodes = self._nodes, []
        return nodes

    def execute(self, job_name: str | None = None) -> JobExecutionResult:
        """Run the job declared so far to the end (unbounded sources: until cancelled)."""
        name = job_name or "Flink Streaming Job"
        runner = self._runner(self._take_nodes(), name)
        started = time.monotonic()
        runner.run()
        elapsed = int((time.monotonic() - started) * 1000)
        return JobExecutionResult(runner.job_id, name, elapsed, runner.counters())

    def execute_async(self, job_name: str | None = None) -> JobClient:
        """Start the job in the background; control it through the returned ``JobClient``."""
        name = job_name or "Flink Streaming Job"
        runner = self._runner(self._take_nodes(), name)
        outcome: dict[str, Any] = {}

        def run() -> None:
            started = time.monotonic()
            try:
                runner.run()
                elapsed = int((time.monotonic() - started) * 1000)
                outcome["result"] = JobExecutionResult(
                    runner.job_id, name, elapsed, runner.counters()
                )
            except BaseException as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=run, name=f"fraudstream-job-{name}", daemon=True)
        thread.start()
        return JobClient(runner.job_id, runner, thread, outcome)

    def _execute_and_collect(
        self, target: Transformation, job_name: str | None
    ) -> CloseableIterator:
        buffer: list[Any] = []
        sink = Transformation("sink", "Collect Sink", [target])
        sink.factory = lambda n, u: CollectSinkOperator(n, u, buffer.extend)
        self._add(sink)
        runner = self._runner(self._take_nodes(), job_name or "collect")
        runner.start_stepwise()
        position = 0

        def pull() -> tuple[bool, Any]:
            nonlocal position
            while position >= len(buffer):
                if not runner.step() and position >= len(buffer):
                    return False, None
            value = buffer[position]
            position += 1
            if position > 4096 and position * 2 > len(buffer):
                del buffer[:position]
                position = 0
            return True, value

        return CloseableIterator(pull, runner.stop_stepwise)

    def get_execution_plan(self) -> str:
        """The job graph as JSON (operators and edges)."""
        import json

        from fraudstream.runtime.plan import reachable, resolve_edges

        nodes = reachable(self._nodes)
        return json.dumps(
            {
                "nodes": [
                    {"id": n.id, "type": n.kind, "name": n.name, "uid": n.uid}
                    for n in nodes
                    if n.is_physical
                ],
                "edges": [
                    {
                        "from": e.upstream.id,
                        "to": e.downstream.id,
                        "partitioning": e.partitioning,
                        "side_output": e.side_tag,
                    }
                    for e in resolve_edges(nodes)
                ],
            },
            indent=2,
        )

    def close(self) -> None:
        """Forget the declared job."""
        self._nodes = []

    @staticmethod
    def new_job_id() -> str:
        """A fresh job id."""
        return uuid.uuid4().hex


def _named_row(element: Any, type_info: RowTypeInfo) -> Row:
    """``element`` as a Row carrying the type's field names, as Flink delivers it."""
    row = Row(*element)
    row.set_field_names(type_info.get_field_names())
    if isinstance(element, Row):
        row.set_row_kind(element.get_row_kind())
    return row
