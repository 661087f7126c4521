//! Repository digests ("127.0.0.1:5000/test/busybox@sha256:…"): what a registry served for
//! an image we pulled or pushed, shown as RepoDigests and usable as a name. Kept in the state
//! database in a table of their own, through a connection of their own (WAL lets both write).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Context, Result};

pub(crate) struct RepoDigests {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS repo_digests (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL
);
";

impl RepoDigests {
    pub(crate) fn open(db: &Path) -> Result<RepoDigests> {
        let conn = Connection::open(db).ctx(|| format!("open {}", db.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(RepoDigests {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        crate::lock(&self.conn)
    }

    /// Record `name` ("repo@digest") for `image_id`, and forget entries of deleted images.
    pub(crate) fn put(&self, name: &str, image_id: &str) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR REPLACE INTO repo_digests (name, image_id) VALUES (?1, ?2)",
            params![name, image_id],
        )?;
        conn.execute(
            "DELETE FROM repo_digests WHERE image_id NOT IN (SELECT id FROM images)",
            [],
        )?;
        Ok(())
    }

    pub(crate) fn image_of(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT image_id FROM repo_digests WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub(crate) fn of_image(&self, image_id: &str) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut st =
            conn.prepare("SELECT name FROM repo_digests WHERE image_id = ?1 ORDER BY name")?;
        let rows = st.query_map(params![image_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_forgets_with_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        let db = crate::db::Db::open(&path).unwrap();
        drop(db);
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO images (id, manifest, added) VALUES ('sha256:a', 'sha256:m', 'now')",
            [],
        )
        .unwrap();
        let d = RepoDigests::open(&path).unwrap();
        d.put("reg/x@sha256:1", "sha256:a").unwrap();
        assert_eq!(
            d.image_of("reg/x@sha256:1").unwrap().as_deref(),
            Some("sha256:a")
        );
        assert_eq!(d.of_image("sha256:a").unwrap(), ["reg/x@sha256:1"]);
        conn.execute("DELETE FROM images", []).unwrap();
        d.put("reg/y@sha256:2", "sha256:b").unwrap();
        assert!(
            d.image_of("reg/x@sha256:1").unwrap().is_none(),
            "stale entry kept"
        );
        assert!(d.image_of("reg/y@sha256:2").unwrap().is_none());
    }
}
