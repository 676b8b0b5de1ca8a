"""Images in and out: may import `lookcloser.core` only.

- `files`: regular-file checks before anything is opened (no pipes, devices, huge files), atomic writes.
- `load`: `load_image` for every accepted input (path, bytes, base64, data URL, PIL, numpy) with its
  guards, and `crop`.
- `store`: the in-process, content-hashed image store (`lookcloser-image:<hash>` keys).
- `refs`: the references graph state holds instead of images, resolved inside the allowed folders.
- `checkpoints`: LangGraph checkpoint serde that stores each image once, by reference.
- `draw`: findings drawn on the photo (`--save-vis`).
"""
