//! mount(8)-style option strings from config.json → mount(2) flags, propagation changes,
//! recursive attributes for mount_setattr(2), and the filesystem-specific rest (`data`).

use libc::c_ulong;

use super::sys::MountAttr;

/// Propagation changes need a mount(2) call each, after the mount itself.
pub const PROPAGATION_MASK: c_ulong =
    libc::MS_PRIVATE | libc::MS_SHARED | libc::MS_SLAVE | libc::MS_UNBINDABLE;

/// The atime mode bits; asking for one mode replaces the others.
const ATIME_MASK: c_ulong = libc::MS_NOATIME | libc::MS_RELATIME | libc::MS_STRICTATIME;

/// A mount entry's options, parsed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount(2) call (MS_BIND and MS_REC included for bind/rbind).
    pub flags: c_ulong,
    /// Propagation changes, in the order given (each with MS_REC when recursive).
    pub propagation: Vec<c_ulong>,
    /// Recursive attribute changes (`rro`, `rnosuid`, ...), applied with AT_RECURSIVE.
    pub recursive: MountAttr,
    /// Whatever mount(2) does not know as a flag, joined with ',' for the data argument.
    pub data: Vec<String>,
    /// `tmpcopyup`: copy the destination's existing contents into a new tmpfs.
    pub tmpcopyup: bool,
    /// `idmap`/`ridmap` was asked for.
    pub idmap: bool,
}

impl MountOptions {
    pub fn parse<S: AsRef<str>>(options: &[S]) -> MountOptions {
        let mut o = MountOptions::default();
        for opt in options {
            o.apply(opt.as_ref());
        }
        o
    }

    pub fn is_bind(&self) -> bool {
        self.flags & libc::MS_BIND != 0
    }

    pub fn is_recursive_bind(&self) -> bool {
        self.is_bind() && self.flags & libc::MS_REC != 0
    }

    /// The data argument for mount(2), or None when there is none.
    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }

    /// Whether the user chose an atime mode explicitly.
    pub fn has_atime_choice(&self) -> bool {
        self.flags & ATIME_MASK != 0
    }

    fn apply(&mut self, opt: &str) {
        if let Some((set, flag)) = plain_flag(opt) {
            if flag & ATIME_MASK != 0 && set {
                self.flags &= !ATIME_MASK;
            }
            if set {
                self.flags |= flag;
            } else {
                self.flags &= !flag;
            }
        } else if let Some(p) = propagation_flag(opt) {
            self.propagation.push(p);
        } else if let Some((set, attr)) = recursive_attr(opt) {
            self.apply_recursive(set, attr);
        } else {
            match opt {
                "defaults" | "" => {}
                "tmpcopyup" => self.tmpcopyup = true,
                "idmap" | "ridmap" => self.idmap = true,
                // Userspace-only options of mount(8); the kernel would reject them.
                o if o.starts_with("x-") => {}
                o => self.data.push(o.to_string()),
            }
        }
    }

    fn apply_recursive(&mut self, set: bool, attr: u64) {
        let r = &mut self.recursive;
        let atime = libc::MOUNT_ATTR__ATIME;
        if attr & atime != 0 || (attr == libc::MOUNT_ATTR_RELATIME && set) {
            // The kernel wants the whole atime field cleared when a mode is set.
            r.attr_clr |= atime;
            r.attr_set &= !atime;
            if set {
                r.attr_set |= attr;
            }
            return;
        }
        if set {
            r.attr_set |= attr;
            r.attr_clr &= !attr;
        } else {
            r.attr_clr |= attr;
            r.attr_set &= !attr;
        }
    }
}

/// `(set, flag)`: options that set or clear an MS_* bit.
fn plain_flag(opt: &str) -> Option<(bool, c_ulong)> {
    use libc::*;
    let f = match opt {
        "ro" => (true, MS_RDONLY),
        "rw" => (false, MS_RDONLY),
        "nosuid" => (true, MS_NOSUID),
        "suid" => (false, MS_NOSUID),
        "nodev" => (true, MS_NODEV),
        "dev" => (false, MS_NODEV),
        "noexec" => (true, MS_NOEXEC),
        "exec" => (false, MS_NOEXEC),
        "sync" => (true, MS_SYNCHRONOUS),
        "async" => (false, MS_SYNCHRONOUS),
        "dirsync" => (true, MS_DIRSYNC),
        "remount" => (true, MS_REMOUNT),
        "mand" => (true, MS_MANDLOCK),
        "nomand" => (false, MS_MANDLOCK),
        "noatime" => (true, MS_NOATIME),
        "atime" => (false, MS_NOATIME),
        "nodiratime" => (true, MS_NODIRATIME),
        "diratime" => (false, MS_NODIRATIME),
        "relatime" => (true, MS_RELATIME),
        "norelatime" => (false, MS_RELATIME),
        "strictatime" => (true, MS_STRICTATIME),
        "nostrictatime" => (false, MS_STRICTATIME),
        "lazytime" => (true, MS_LAZYTIME),
        "nolazytime" => (false, MS_LAZYTIME),
        "iversion" => (true, MS_I_VERSION),
        "noiversion" => (false, MS_I_VERSION),
        "silent" => (true, MS_SILENT),
        "loud" => (false, MS_SILENT),
        "nosymfollow" => (true, MS_NOSYMFOLLOW),
        "symfollow" => (false, MS_NOSYMFOLLOW),
        "bind" => (true, MS_BIND),
        "rbind" => (true, MS_BIND | MS_REC),
        _ => return None,
    };
    Some(f)
}

fn propagation_flag(opt: &str) -> Option<c_ulong> {
    use libc::*;
    let p = match opt {
        "private" => MS_PRIVATE,
        "rprivate" => MS_PRIVATE | MS_REC,
        "shared" => MS_SHARED,
        "rshared" => MS_SHARED | MS_REC,
        "slave" => MS_SLAVE,
        "rslave" => MS_SLAVE | MS_REC,
        "unbindable" => MS_UNBINDABLE,
        "runbindable" => MS_UNBINDABLE | MS_REC,
        _ => return None,
    };
    Some(p)
}

/// `(set, attr)`: the recursive `r*` options, mount_setattr's MOUNT_ATTR_* bits.
fn recursive_attr(opt: &str) -> Option<(bool, u64)> {
    use libc::*;
    let a = match opt {
        "rro" => (true, MOUNT_ATTR_RDONLY),
        "rrw" => (false, MOUNT_ATTR_RDONLY),
        "rnosuid" => (true, MOUNT_ATTR_NOSUID),
        "rsuid" => (false, MOUNT_ATTR_NOSUID),
        "rnodev" => (true, MOUNT_ATTR_NODEV),
        "rdev" => (false, MOUNT_ATTR_NODEV),
        "rnoexec" => (true, MOUNT_ATTR_NOEXEC),
        "rexec" => (false, MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (true, MOUNT_ATTR_NODIRATIME),
        "rdiratime" => (false, MOUNT_ATTR_NODIRATIME),
        "rnosymfollow" => (true, MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => (false, MOUNT_ATTR_NOSYMFOLLOW),
        "rrelatime" => (true, MOUNT_ATTR_RELATIME),
        "rnoatime" => (true, MOUNT_ATTR_NOATIME),
        "rstrictatime" => (true, MOUNT_ATTR_STRICTATIME),
        // Leaving a mode falls back to the kernel default, relatime.
        "rnorelatime" | "ratime" | "rnostrictatime" => (true, MOUNT_ATTR_RELATIME),
        _ => return None,
    };
    Some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_set_and_clear_in_order() {
        let o = MountOptions::parse(&["ro", "nosuid", "nodev", "rw", "noexec"]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
        assert!(o.data.is_empty());
    }

    #[test]
    fn unknown_options_become_data() {
        let o = MountOptions::parse(&["nosuid", "mode=755", "size=65536k", "x-systemd.foo"]);
        assert_eq!(o.flags, libc::MS_NOSUID);
        assert_eq!(o.data_string().as_deref(), Some("mode=755,size=65536k"));
    }

    #[test]
    fn bind_rbind_and_propagation() {
        let o = MountOptions::parse(&["rbind", "ro", "rprivate", "shared"]);
        assert!(o.is_bind() && o.is_recursive_bind());
        assert_eq!(
            o.propagation,
            vec![libc::MS_PRIVATE | libc::MS_REC, libc::MS_SHARED]
        );
        let b = MountOptions::parse(&["bind"]);
        assert!(b.is_bind() && !b.is_recursive_bind());
    }

    #[test]
    fn atime_modes_replace_each_other() {
        let o = MountOptions::parse(&["noatime", "strictatime"]);
        assert_eq!(o.flags, libc::MS_STRICTATIME);
        assert!(o.has_atime_choice());
        assert!(!MountOptions::parse(&["nodiratime"]).has_atime_choice());
    }

    #[test]
    fn recursive_attributes() {
        let o = MountOptions::parse(&["rro", "rnosuid", "rdev", "rnoatime"]);
        assert_eq!(
            o.recursive.attr_set,
            libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOATIME
        );
        assert_eq!(
            o.recursive.attr_clr,
            libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR__ATIME
        );
        let rw = MountOptions::parse(&["rro", "rrw"]);
        assert_eq!(rw.recursive.attr_set, 0);
        assert_eq!(rw.recursive.attr_clr, libc::MOUNT_ATTR_RDONLY);
    }

    #[test]
    fn extensions() {
        let o = MountOptions::parse(&["tmpcopyup", "nosymfollow"]);
        assert!(o.tmpcopyup);
        assert_eq!(o.flags, libc::MS_NOSYMFOLLOW);
        assert!(MountOptions::parse(&["idmap"]).idmap);
    }
}
