"""The same fraud jobs on Apache Flink: one job source, two engines.

Job code (``fraudstream.fraud``) imports only the PyFlink-shaped public API,
``fraudstream.datastream`` and ``fraudstream.common``. On the embedded engine those are
fraudstream's own modules. Inside a Flink interpreter (a virtual environment with
``apache-flink``), :func:`use_pyflink` installs a *reverse alias*: from then on
``import fraudstream.datastream...`` and ``import fraudstream.common...`` return the
``pyflink.datastream...`` and ``pyflink.common...`` modules, so the very same job
classes subclass PyFlink's functions and build PyFlink streams. Flink's Python workers
install the alias at start-up too, through the ``sitecustomize`` module that
:func:`flink_job_env` puts first on their ``PYTHONPATH``.

``fraudstream job NAME --engine flink`` (:func:`run_job_on_flink`) runs a job that way
on a local Flink mini cluster; ``docs/flink-deployment.md`` shows the same on a cluster.
"""

from __future__ import annotations

from fraudstream.flink.launcher import flink_job_env, flink_python, run_job_on_flink
from fraudstream.flink.reverse_alias import use_embedded, use_pyflink

__all__ = ["flink_job_env", "flink_python", "run_job_on_flink", "use_embedded", "use_pyflink"]
