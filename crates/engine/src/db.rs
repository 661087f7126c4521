//! The state database (SQLite, WAL): images, tags and containers. Only the engine opens it.
//! Container records are JSON documents keyed by id with a unique name column; every change is
//! one statement, so a crash leaves either the old or the new record.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::containers::model::ContainerRecord;
use crate::error::{Context, Result};

pub struct Db {
    conn: Connection,
}

/// One image row: its id (config digest), manifest digest and when it was added.
#[derive(Debug, Clone)]
pub struct ImageRow {
    pub id: String,
    pub manifest: String,
    pub added: String,
}

/// name, created, labels.
pub type VolumeRow = (String, String, std::collections::BTreeMap<String, String>);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    manifest TEXT NOT NULL,
    added TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    labels TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL
);
";

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        let conn = Connection::open(path).ctx(|| format!("open {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        // Every statement here is prepared once and kept: parsing SQL again for each request
        // was a visible part of berthd's CPU time in a `run --rm` loop.
        conn.set_prepared_statement_cache_capacity(32);
        Ok(Db { conn })
    }

    // --- images ---

    /// Add (or keep) an image and point `tags` at it, in one transaction.
    pub fn put_image(&mut self, row: &ImageRow, tags: &[String]) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.prepare_cached(
            "INSERT OR IGNORE INTO images (id, manifest, added) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![row.id, row.manifest, row.added])?;
        tx.prepare_cached("UPDATE images SET manifest = ?2 WHERE id = ?1")?
            .execute(params![row.id, row.manifest])?;
        for t in tags {
            tx.prepare_cached("INSERT OR REPLACE INTO tags (name, image_id) VALUES (?1, ?2)")?
                .execute(params![t, row.id])?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn images(&self) -> Result<Vec<ImageRow>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id, manifest, added FROM images ORDER BY added DESC")?;
        let rows = st.query_map([], |r| {
            Ok(ImageRow {
                id: r.get(0)?,
                manifest: r.get(1)?,
                added: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn image(&self, id: &str) -> Result<Option<ImageRow>> {
        Ok(self
            .conn
            .prepare_cached("SELECT id, manifest, added FROM images WHERE id = ?1")?
            .query_row(params![id], |r| {
                Ok(ImageRow {
                    id: r.get(0)?,
                    manifest: r.get(1)?,
                    added: r.get(2)?,
                })
            })
            .optional()?)
    }

    pub fn set_tag(&mut self, name: &str, image_id: &str) -> Result<()> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO tags (name, image_id) VALUES (?1, ?2)")?
            .execute(params![name, image_id])?;
        Ok(())
    }

    pub fn remove_tag(&mut self, name: &str) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("DELETE FROM tags WHERE name = ?1")?
            .execute(params![name])?
            > 0)
    }

    /// Remove an image and its tags in one transaction.
    pub fn delete_image(&mut self, id: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.prepare_cached("DELETE FROM tags WHERE image_id = ?1")?
            .execute(params![id])?;
        tx.prepare_cached("DELETE FROM images WHERE id = ?1")?
            .execute(params![id])?;
        tx.commit()?;
        Ok(())
    }

    pub fn tag_target(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT image_id FROM tags WHERE name = ?1")?
            .query_row(params![name], |r| r.get(0))
            .optional()?)
    }

    pub fn tags_of(&self, image_id: &str) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT name FROM tags WHERE image_id = ?1 ORDER BY name")?;
        let rows = st.query_map(params![image_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Image ids whose hex starts with `prefix`.
    pub fn images_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id FROM images WHERE substr(id, 8, ?2) = ?1")?;
        let rows = st.query_map(params![prefix, prefix.len() as i64], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // --- volumes ---

    pub fn put_volume(
        &mut self,
        name: &str,
        created: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Result<()> {
        let labels = serde_json::to_string(labels).ctx(|| "serialize labels".into())?;
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO volumes (name, created, labels) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![name, created, labels])?;
        Ok(())
    }

    pub fn volume(&self, name: &str) -> Result<Option<VolumeRow>> {
        let row: Option<(String, String, String)> = self
            .conn
            .prepare_cached("SELECT name, created, labels FROM volumes WHERE name = ?1")?
            .query_row(params![name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        Ok(row.map(|(n, c, l)| (n, c, serde_json::from_str(&l).unwrap_or_default())))
    }

    pub fn volumes(&self) -> Result<Vec<VolumeRow>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT name, created, labels FROM volumes ORDER BY name")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (n, c, l) = row?;
            out.push((n, c, serde_json::from_str(&l).unwrap_or_default()));
        }
        Ok(out)
    }

    pub fn delete_volume(&mut self, name: &str) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM volumes WHERE name = ?1")?
            .execute(params![name])?;
        Ok(())
    }

    // --- containers ---

    pub fn insert_container(&mut self, rec: &ContainerRecord) -> Result<bool> {
        let json = serde_json::to_string(rec).ctx(|| "serialize container".into())?;
        match self
            .conn
            .prepare_cached("INSERT INTO containers (id, name, record) VALUES (?1, ?2, ?3)")?
            .execute(params![rec.id, rec.name, json])
        {
            Ok(_) => Ok(true),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn update_container(&mut self, rec: &ContainerRecord) -> Result<()> {
        let json = serde_json::to_string(rec).ctx(|| "serialize container".into())?;
        self.conn
            .prepare_cached("UPDATE containers SET name = ?2, record = ?3 WHERE id = ?1")?
            .execute(params![rec.id, rec.name, json])?;
        Ok(())
    }

    pub fn delete_container(&mut self, id: &str) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM containers WHERE id = ?1")?
            .execute(params![id])?;
        Ok(())
    }

    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        let mut st = self.conn.prepare_cached("SELECT record FROM containers")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for json in rows {
            let json = json?;
            match serde_json::from_str(&json) {
                Ok(rec) => out.push(rec),
                Err(e) => tracing::warn!("skipping an unreadable container record: {e}"),
            }
        }
        Ok(out)
    }

    /// By full id, by name, or by a unique id prefix.
    pub fn find_container(&self, key: &str) -> Result<Option<ContainerRecord>> {
        let key = key.strip_prefix('/').unwrap_or(key);
        let exact: Option<String> = self
            .conn
            .prepare_cached("SELECT record FROM containers WHERE id = ?1 OR name = ?1")?
            .query_row(params![key], |r| r.get(0))
            .optional()?;
        let json = match exact {
            Some(j) => Some(j),
            None if !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit()) => {
                let mut st = self
                    .conn
                    .prepare_cached("SELECT record FROM containers WHERE substr(id, 1, ?2) = ?1")?;
                let rows: Vec<String> = st
                    .query_map(params![key, key.len() as i64], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                if rows.len() > 1 {
                    return Err(crate::Error::InvalidParameter(format!(
                        "multiple containers found with provided prefix: {key}"
                    )));
                }
                rows.into_iter().next()
            }
            None => None,
        };
        match json {
            None => Ok(None),
            Some(j) => Ok(Some(
                serde_json::from_str(&j).ctx(|| format!("parse the record of container {key}"))?,
            )),
        }
    }
}
