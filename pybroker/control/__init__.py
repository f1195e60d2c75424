"""The control plane: where broker processes and the supervisor meet.

``broker/`` and ``supervisor/`` never import each other; both speak the typed messages
declared in ``messages`` over a ``Channel``.
"""
