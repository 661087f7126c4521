//! Docker's `User` ("name", "uid", "uid:gid", "name:group") resolved against the container's
//! own /etc/passwd and /etc/group.

use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

fn lookup(file: &Path, name: &str) -> Option<(u32, Option<u32>)> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 3 && f[0] == name {
            let id = f[2].parse().ok()?;
            let gid = f.get(3).and_then(|g| g.parse().ok());
            Some((id, gid))
        } else {
            None
        }
    })
}

/// Groups in `rootfs/etc/group` listing `user` as a member.
fn supplementary(rootfs: &Path, user: &str) -> Vec<u32> {
    let Ok(text) = std::fs::read_to_string(rootfs.join("etc/group")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[3].split(',').any(|m| m == user))
                .then(|| f[2].parse().ok())
                .flatten()
        })
        .collect()
}

pub fn resolve(rootfs: &Path, user: &str) -> Result<Ids, String> {
    if user.is_empty() {
        return Ok(Ids {
            uid: 0,
            gid: 0,
            additional_gids: supplementary(rootfs, "root"),
        });
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = rootfs.join("etc/passwd");
    let (uid, primary, name) = match u.parse::<u32>() {
        Ok(n) => {
            // A numeric uid may still have a passwd entry for its primary group.
            let text = std::fs::read_to_string(&passwd).unwrap_or_default();
            let entry = text.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 4 && f[2] == u).then(|| (f[0].to_string(), f[3].parse().ok()))
            });
            match entry {
                Some((name, gid)) => (n, gid, Some(name)),
                None => (n, None, None),
            }
        }
        Err(_) => match lookup(&passwd, u) {
            Some((uid, gid)) => (uid, gid, Some(u.to_string())),
            None => {
                return Err(format!(
                    "unable to find user {u}: no matching entries in passwd file"
                ))
            }
        },
    };
    let gid = match g {
        None => primary.unwrap_or(0),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => match lookup(&rootfs.join("etc/group"), g) {
                Some((gid, _)) => gid,
                None => {
                    return Err(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                }
            },
        },
    };
    Ok(Ids {
        uid,
        gid,
        additional_gids: name.map(|n| supplementary(rootfs, &n)).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_and_numbers() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nweb:x:1000:1001::/home/web:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nweb:x:1001:\nextra:x:50:web\n",
        )
        .unwrap();
        assert_eq!(
            resolve(d.path(), "web").unwrap(),
            Ids {
                uid: 1000,
                gid: 1001,
                additional_gids: vec![50]
            }
        );
        assert_eq!(resolve(d.path(), "1000:0").unwrap().gid, 0);
        assert_eq!(resolve(d.path(), "77").unwrap().uid, 77);
        assert_eq!(resolve(d.path(), "web:extra").unwrap().gid, 50);
        assert!(resolve(d.path(), "nobody").is_err());
    }
}
