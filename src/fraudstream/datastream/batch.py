"""Batch hooks: an optional, fraudstream-only fast path for process functions.

PyFlink calls a process function once per record, and so does fraudstream for every
function written against the PyFlink API. A function may *also* define the hooks below;
the embedded engine then hands it whole batches instead (PyFlink, which does not know
them, keeps calling the per-record methods, so the function must give the same results
both ways). They save the per-record call, context and key switching of the engine.

``process_element_batch(values, timestamps, ctx, out)``
    On a ``BroadcastProcessFunction`` (non-broadcast side) or a ``ProcessFunction``:
    process ``values`` (``timestamps`` is a parallel list, or ``None`` when the stream
    has no event time) and append the results to ``out``.

``process_keyed_batch(keys, values, timestamps, ctx, out)``
    On a ``KeyedBroadcastProcessFunction`` (non-broadcast side): the same with each
    record's key in ``keys``. No current key is set: keyed state is reached by explicit
    key through ``ctx.value_table(descriptor)`` (see
    :meth:`~fraudstream.state.base.KeyedStateBackend.value_table`).

``on_watermark_batch(watermark, ctx, out)``
    On a keyed function with ``process_keyed_batch``: called each time the operator's
    watermark advances, after due event-time timers and before the watermark goes
    downstream; replaces per-key cleanup timers by one sweep per instance. It is called
    also while records come one by one (failing records go to a side output), so the
    keys a batch-mode checkpoint restored without timers are still swept.

``extract_timestamp_batch(values)``
    On a ``TimestampAssigner``: the event times of a batch of records that carry no
    timestamp yet, as a list (``extract_timestamp(value, MIN_WATERMARK)`` of each).

The record hooks of process functions (``process_element_batch``, ``process_keyed_batch``)
are used only when the operator does not divert failing records to a side output (they
cannot say which record of a batch failed). A hook
is used only where it is as specific as the per-record method it stands for
(:func:`fraudstream.runtime.operators.hooks.batch_hook`): a subclass that overrides
``process_element`` or ``extract_timestamp`` but not the hook gets called per record,
as on PyFlink.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["BatchOutput"]


class BatchOutput(Protocol):
    """Where batch hooks put their results, in order.

    ``values`` and ``timestamps`` are the main output (append to both, a timestamp or
    ``None`` per value); :meth:`side` gives the two lists of a side output, and
    :meth:`consumes` whether anyone reads it.
    """

    values: list[Any]
    timestamps: list[int | None]

    def side(self, tag_id: str) -> tuple[list[Any], list[int | None]]:
        """The value and timestamp lists of the side output ``tag_id`` (created if new)."""
        ...

    def consumes(self, tag_id: str) -> bool:
        """Whether the side output ``tag_id`` has a consumer: values for it can be skipped."""
        ...
