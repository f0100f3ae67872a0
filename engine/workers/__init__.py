"""
Several engine processes on one node: ``aiguillage run --workers N --listeners M``.

:mod:`~engine.workers.plan` decides which processes run (pure), :mod:`~engine.workers.supervisor`
spawns and restarts them, :mod:`~engine.workers.child` is the parent's view of one child,
:mod:`~engine.workers.parent_watch` a child's view of its parent.
"""
