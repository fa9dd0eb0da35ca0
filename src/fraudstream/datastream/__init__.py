"""The DataStream API, named and shaped as ``pyflink.datastream``."""

from __future__ import annotations

from typing import Any

from fraudstream.datastream.checkpoint_config import CheckpointConfig, CheckpointingMode
from fraudstream.datastream.data_stream import (
    BroadcastConnectedStream,
    BroadcastStream,
    CloseableIterator,
    ConnectedStreams,
    DataStream,
    DataStreamSink,
    KeyedStream,
)
from fraudstream.datastream.execution_mode import RuntimeExecutionMode
from fraudstream.datastream.functions import (
    AggregateFunction,
    BroadcastProcessFunction,
    CoFlatMapFunction,
    CoMapFunction,
    CoProcessFunction,
    FilterFunction,
    FlatMapFunction,
    Function,
    KeyedBroadcastProcessFunction,
    KeyedCoProcessFunction,
    KeyedProcessFunction,
    KeySelector,
    MapFunction,
    ProcessFunction,
    ReduceFunction,
    RuntimeContext,
    SinkFunction,
)
from fraudstream.datastream.output_tag import OutputTag
from fraudstream.datastream.state import (
    AggregatingState,
    AggregatingStateDescriptor,
    ListState,
    ListStateDescriptor,
    MapState,
    MapStateDescriptor,
    ReducingState,
    ReducingStateDescriptor,
    StateTtlConfig,
    ValueState,
    ValueStateDescriptor,
)
from fraudstream.datastream.state_backend import EmbeddedRocksDBStateBackend, HashMapStateBackend
from fraudstream.datastream.stream_execution_environment import (
    ExecutionConfig,
    JobClient,
    JobExecutionResult,
    StreamExecutionEnvironment,
)
from fraudstream.datastream.time_domain import TimeDomain
from fraudstream.datastream.timerservice import TimerService
from fraudstream.exceptions import UnsupportedFeatureError

__all__ = [
    "AggregateFunction",
    "AggregatingState",
    "AggregatingStateDescriptor",
    "BroadcastConnectedStream",
    "BroadcastProcessFunction",
    "BroadcastStream",
    "CheckpointConfig",
    "CheckpointingMode",
    "CloseableIterator",
    "CoFlatMapFunction",
    "CoMapFunction",
    "CoProcessFunction",
    "ConnectedStreams",
    "DataStream",
    "DataStreamSink",
    "EmbeddedRocksDBStateBackend",
    "ExecutionConfig",
    "FilterFunction",
    "FlatMapFunction",
    "Function",
    "HashMapStateBackend",
    "JobClient",
    "JobExecutionResult",
    "KeySelector",
    "KeyedBroadcastProcessFunction",
    "KeyedCoProcessFunction",
    "KeyedProcessFunction",
    "KeyedStream",
    "ListState",
    "ListStateDescriptor",
    "MapFunction",
    "MapState",
    "MapStateDescriptor",
    "OutputTag",
    "ProcessFunction",
    "ReduceFunction",
    "ReducingState",
    "ReducingStateDescriptor",
    "RuntimeContext",
    "RuntimeExecutionMode",
    "SinkFunction",
    "StateTtlConfig",
    "StreamExecutionEnvironment",
    "TimeDomain",
    "TimerService",
    "ValueState",
    "ValueStateDescriptor",
]

_UNSUPPORTED = {
    "WindowedStream": "windows",
    "AllWindowedStream": "windows",
    "Window": "windows",
    "TimeWindow": "windows",
    "CountWindow": "windows",
    "WindowAssigner": "windows",
    "Trigger": "windows",
    "WindowFunction": "windows",
    "ProcessWindowFunction": "windows",
    "SlidingEventTimeWindows": "windows",
    "TumblingEventTimeWindows": "windows",
    "TumblingProcessingTimeWindows": "windows",
    "SlidingProcessingTimeWindows": "windows",
    "EventTimeSessionWindows": "windows",
    "SourceFunction": "legacy SourceFunction sources",
    "Partitioner": "custom partitioning",
    "TimeCharacteristic": "",
}


def __getattr__(name: str) -> Any:
    if name == "TimeCharacteristic":
        from enum import Enum

        return Enum("TimeCharacteristic", "ProcessingTime IngestionTime EventTime")
    if name in _UNSUPPORTED:
        raise UnsupportedFeatureError(
            f"pyflink.datastream.{name} ({_UNSUPPORTED[name]})",
            "keyed process functions with state and timers; see docs/compatibility.md",
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
