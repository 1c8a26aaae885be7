"""A disk that stops taking commits and comes back, made by SQLite itself: ``max_page_count``
on the store's writer connection makes every commit that needs a new page fail with
SQLITE_FULL, exactly as a full filesystem does, and raising it again is the disk returning."""

from __future__ import annotations

from gateway.store import Store

UNLIMITED_PAGES = 1_073_741_823


async def fill_disk(store: Store) -> None:
    def limit() -> None:
        pages = store.wdb.conn.execute("PRAGMA page_count").fetchone()[0]
        store.wdb.conn.execute(f"PRAGMA max_page_count = {pages}")

    await store._on_writer(limit)


async def free_disk(store: Store) -> None:
    await store._on_writer(lambda: store.wdb.conn.execute(f"PRAGMA max_page_count = {UNLIMITED_PAGES}"))
