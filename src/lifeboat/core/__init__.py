"""Pure types and logic shared by every layer: ids, snapshot and tree records, retention,
patterns and progress events. Nothing in this package performs I/O."""
