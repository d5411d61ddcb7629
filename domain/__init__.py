"""Pure domain core: the Task value and its state machine. No I/O."""
