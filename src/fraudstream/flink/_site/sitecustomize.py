"""Flink's Python processes import this at start-up: job code's API becomes PyFlink's.

Only ``fraudstream job --engine flink`` and the deployment docs put this folder on
``PYTHONPATH``, and only for the Flink interpreter (see ``fraudstream.flink``).
"""

from fraudstream.flink.reverse_alias import use_pyflink

use_pyflink()
