//! Secrets for one run (`--secret-env NAME=@FILE`, `--secret-env
//! NAME=fd:N`, `Sandbox::secret_env`): short-lived credentials that go into
//! the payload's environment and nowhere else.
//!
//! A secret is per-run input, not policy: it is never part of a
//! [`crate::policy::Policy`], so no policy dump, digest or `cordon check`
//! output can hold it. Its value is read once, before the launch, into a
//! [`Secret`], whose buffer is overwritten with zeros when it is dropped
//! (and whose `Debug` prints `<redacted>`); errors name the flag and the
//! variable, never the value.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// The largest secret cordon reads (64 KiB): credentials are far smaller,
/// and the bound keeps a wrong file (or a device) from being read whole.
pub const MAX_SECRET_BYTES: usize = 64 << 10;

/// Overwrite `buf` with zeros in a way the compiler cannot drop as a dead
/// store.
pub fn zeroize(buf: &mut [u8]) {
    for b in buf.iter_mut() {
        // SAFETY: `b` is a valid, aligned, exclusive reference to a u8.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// Overwrite all of `v`'s buffer, its spare capacity included, with zeros.
/// Never reallocates (so leaves no copy behind).
pub fn zeroize_vec(v: &mut Vec<u8>) {
    let cap = v.capacity();
    // Growing to the capacity writes without reallocating; the volatile
    // pass then covers every byte of the buffer.
    v.resize(cap, 0);
    zeroize(v);
    v.clear();
}

/// A secret value: bytes that are overwritten with zeros when dropped and
/// never shown by `Debug`. Not `Clone`, so that every copy is one cordon
/// made on purpose (and zeroes).
pub struct Secret {
    bytes: Vec<u8>,
}

impl Secret {
    /// Take `bytes` as a secret (they are zeroed when the `Secret` drops).
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret { bytes }
    }

    /// The value.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// Read the secret in file `path` (`--secret-env NAME=@FILE`): opened
    /// without following a symbolic link (for the file or any directory on
    /// its path) and without blocking, a regular
    /// file of at most [`MAX_SECRET_BYTES`], one trailing newline
    /// stripped; empty or holding a NUL byte is refused. The error is the
    /// reason, naming the path, never the content.
    pub fn read_file(path: &Path) -> Result<Secret, String> {
        let shown = path.display();
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| format!("{shown}: the path contains a NUL byte"))?;
        // No symbolic link anywhere on the path (RESOLVE_NO_SYMLINKS; the
        // /proc magic links included): a link planted where a sandbox could
        // write, for the file or for a directory above it, would hand
        // another file to the payload. O_NONBLOCK: a FIFO planted at the
        // path must not hang cordon (it is then refused as not regular).
        let fd = crate::sys::openat2(
            libc::AT_FDCWD,
            &c_path,
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
            0,
            crate::sys::RESOLVE_NO_SYMLINKS | crate::sys::RESOLVE_NO_MAGICLINKS,
        )
        .map_err(|e| match e.0 {
            libc::ELOOP => {
                let real = std::fs::canonicalize(path)
                    .map(|p| format!(" (the file it reaches is {})", p.display()))
                    .unwrap_or_default();
                format!(
                    "{shown} is a symbolic link or its path goes through one{real}: cordon does not follow links for secret files, since a link planted where a sandbox could write would hand another file to the payload; give the file's own path"
                )
            }
            _ => format!("cannot open {shown}: {}", e.describe()),
        })?;
        // SAFETY: fd was just opened by openat2 and is owned by nothing else.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot stat {shown}: {}", describe(&e)))?;
        let ft = meta.file_type();
        if !ft.is_file() {
            let kind = if ft.is_dir() {
                "a directory"
            } else if ft.is_fifo() {
                "a FIFO"
            } else if ft.is_socket() {
                "a socket"
            } else if ft.is_char_device() || ft.is_block_device() {
                "a device"
            } else {
                "not a regular file"
            };
            return Err(format!(
                "{shown} is {kind}: a secret file must be a regular file (use fd:N to pass a pipe)"
            ));
        }
        if meta.len() > MAX_SECRET_BYTES as u64 {
            return Err(format!(
                "{shown} is {} bytes, larger than the {} KiB a secret may be",
                meta.len(),
                MAX_SECRET_BYTES >> 10
            ));
        }
        Self::read_bounded(file).map_err(|why| format!("{shown}: {why}"))
    }

    /// Read a secret from `fd` to its end (`--secret-env NAME=fd:N`), at
    /// most [`MAX_SECRET_BYTES`], one trailing newline stripped; `fd` is
    /// closed. Blocks until the writer closes a pipe. A directory, a FIFO
    /// open for writing too (cordon would be a writer itself and wait
    /// forever), an empty value or one holding a NUL byte is refused.
    pub fn read_fd(fd: OwnedFd) -> Result<Secret, String> {
        let file = File::from(fd);
        let meta = file.metadata().map_err(|e| describe(&e))?;
        if meta.is_dir() {
            return Err("is a directory".to_string());
        }
        if meta.file_type().is_fifo() {
            // SAFETY: F_GETFL only reads the flags of `file`'s descriptor,
            // which is open for as long as `file` lives.
            let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
            if flags >= 0 && flags & libc::O_ACCMODE == libc::O_RDWR {
                return Err(
                    "is a FIFO open for writing too (3<>FIFO): cordon would hold a write end itself and wait forever for the end of the value; open it for reading only (3<FIFO)"
                        .to_string(),
                );
            }
        }
        Self::read_bounded(file)
    }

    /// Read `file` to its end into one buffer allocated up front (so no
    /// reallocation leaves a copy behind), refusing more than
    /// [`MAX_SECRET_BYTES`].
    fn read_bounded(mut file: File) -> Result<Secret, String> {
        // One byte more than the bound tells a file at the bound from a
        // larger one.
        let mut secret = Secret::new(vec![0u8; MAX_SECRET_BYTES + 1]);
        let mut n = 0;
        loop {
            if n == secret.bytes.len() {
                return Err(format!(
                    "more than the {} KiB a secret may be",
                    MAX_SECRET_BYTES >> 10
                ));
            }
            match file.read(&mut secret.bytes[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // A non-blocking descriptor with nothing to read yet: wait
                // for the writer, as a blocking one would.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let mut p = libc::pollfd {
                        fd: file.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: p is one valid pollfd for an fd `file` keeps
                    // open; poll only writes its revents.
                    if unsafe { libc::poll(&mut p, 1, -1) } < 0 {
                        let e = std::io::Error::last_os_error();
                        if e.kind() != std::io::ErrorKind::Interrupted {
                            return Err(format!("cannot wait for data: {}", describe(&e)));
                        }
                    }
                }
                Err(e) => return Err(format!("cannot read: {}", describe(&e))),
            }
        }
        if n > 0 && secret.bytes[n - 1] == b'\n' {
            n -= 1;
        }
        // The bytes past `n` stay in the buffer and are zeroed with it.
        secret.bytes.truncate(n);
        if secret.bytes.is_empty() {
            return Err("the secret is empty".to_string());
        }
        if secret.bytes.contains(&0) {
            return Err("the secret contains a NUL byte".to_string());
        }
        Ok(secret)
    }
}

/// An I/O error's text without Rust's " (os error N)" suffix.
fn describe(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize_vec(&mut self.bytes);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<Vec<u8>> for Secret {
    fn from(v: Vec<u8>) -> Secret {
        Secret::new(v)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret::new(s.into_bytes())
    }
}

/// A secret bound to the environment variable it is given to the payload
/// as. `Debug` shows `NAME=<redacted>`.
pub struct SecretEnv {
    name: String,
    value: Secret,
}

/// Why a secret was refused: where it came from (the flag, or the API
/// call), the variable's name when it is known, and the reason. Never the
/// value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretError {
    /// `--secret-env`, or the library call.
    pub origin: String,
    /// The variable, when the input got as far as naming one (quoted when
    /// it is not a valid name).
    pub name: Option<String>,
    /// The reason.
    pub message: String,
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{} {n}: {}", self.origin, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

impl std::error::Error for SecretError {}

/// Check a secret's variable name: a portable shell name
/// (`[A-Za-z_][A-Za-z0-9_]*`, at most 256 bytes), and not `PATH`, which
/// cordon reads to find the command and shows in messages.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if !first_ok || name.len() > 256 || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(
            "invalid variable name: expected letters, digits and '_', not starting with a digit, at most 256 bytes"
                .to_string(),
        );
    }
    if name == "PATH" {
        return Err(
            "PATH cannot be a secret: cordon reads it to find the command and shows it in messages"
                .to_string(),
        );
    }
    Ok(())
}

impl SecretEnv {
    /// Bind `value` to the variable `name`. `origin` names the flag or call
    /// in the error. Refused: an invalid name (see [`check_name`]), and a
    /// value holding a NUL byte (which the environment cannot carry).
    pub fn new(origin: &str, name: &str, value: Secret) -> Result<SecretEnv, SecretError> {
        let err = |message: String, shown: String| SecretError {
            origin: origin.to_string(),
            name: Some(shown),
            message,
        };
        check_name(name).map_err(|m| err(m, format!("{name:?}")))?;
        if value.expose().contains(&0) {
            return Err(err("the value contains a NUL byte".to_string(), name.to_string()));
        }
        Ok(SecretEnv {
            name: name.to_string(),
            value,
        })
    }

    /// The variable's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value.
    pub fn value(&self) -> &Secret {
        &self.value
    }
}

impl fmt::Debug for SecretEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=<redacted>", self.name)
    }
}

/// Where a `--secret-env` value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `@FILE`.
    File(std::path::PathBuf),
    /// `fd:N`.
    Fd(i32),
}

/// Parse a `--secret-env` argument, `NAME=@FILE` or `NAME=fd:N`, without
/// reading anything. The error names the flag and, once it is known, the
/// NAME; never what follows the `=`, and no name where the argument may be
/// a value that holds a '=' (base64 padding): a value typed there by
/// mistake must not be echoed.
pub fn parse_spec(flag: &str, spec: &std::ffi::OsStr) -> Result<(String, Source), SecretError> {
    use std::os::unix::ffi::OsStrExt;
    // A name that is not valid is quoted (it may hold anything); a valid
    // one is shown as is.
    let err = |name: Option<&[u8]>, message: &str| SecretError {
        origin: flag.to_string(),
        name: name.map(|n| {
            let n = String::from_utf8_lossy(n);
            if check_name(&n).is_ok() {
                n.into_owned()
            } else {
                format!("{n:?}")
            }
        }),
        message: message.to_string(),
    };
    let bytes = spec.as_bytes();
    let Some(eq) = bytes.iter().position(|&b| b == b'=') else {
        return Err(err(
            None,
            "expected NAME=@FILE or NAME=fd:N (the argument has no '='; it is not shown, in case it is the value)",
        ));
    };
    let (name, rest) = (&bytes[..eq], &bytes[eq + 1..]);
    // An argument of another shape may be the value itself, given by
    // mistake, and a value can hold '=': base64 ends with one or two, which
    // would make all of it but the padding look like a name. Its name is
    // shown only when it is a valid name followed by more than padding
    // (NAME=VALUE typed by mistake: the NAME says which flag was wrong).
    enum Shape<'a> {
        File(&'a [u8]),
        Fd(&'a [u8]),
    }
    let shape = match (rest.strip_prefix(b"@"), rest.strip_prefix(b"fd:")) {
        (Some(path), _) => Shape::File(path),
        (None, Some(n)) => Shape::Fd(n),
        (None, None) => {
            let named = !rest.iter().all(|&b| b == b'=')
                && std::str::from_utf8(name).is_ok_and(|n| check_name(n).is_ok());
            return Err(err(
                named.then_some(name),
                if named {
                    "expected NAME=@FILE or NAME=fd:N: a secret's value is never taken from the command line, where other users can read it (the text after '=' is not shown)"
                } else {
                    "expected NAME=@FILE or NAME=fd:N: a secret's value is never taken from the command line, where other users can read it (the argument is not shown, in case it is the value)"
                },
            ));
        }
    };
    let name_str = std::str::from_utf8(name).map_err(|_| err(Some(name), "the name is not UTF-8"))?;
    check_name(name_str).map_err(|m| err(Some(name), &m))?;
    let source = match shape {
        Shape::File(path) => {
            if path.is_empty() {
                return Err(err(Some(name), "@FILE needs a file name"));
            }
            Source::File(std::path::PathBuf::from(std::ffi::OsStr::from_bytes(path)))
        }
        Shape::Fd(n) => {
            let fd = std::str::from_utf8(n)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<i32>().ok())
                .ok_or_else(|| err(Some(name), "fd:N needs a descriptor number"))?;
            if fd < 3 {
                return Err(err(
                    Some(name),
                    "fd:N takes a descriptor above 2 (e.g. fd:3 with 3<FILE): standard input, output and error stay the payload's",
                ));
            }
            Source::Fd(fd)
        }
    };
    Ok((name_str.to_string(), source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn specs_parse_and_errors_never_show_the_value() {
        assert_eq!(
            parse_spec("--secret-env", OsStr::new("TOKEN=@/tmp/t")).expect("file"),
            ("TOKEN".to_string(), Source::File("/tmp/t".into()))
        );
        assert_eq!(
            parse_spec("--secret-env", OsStr::new("_T2=fd:7")).expect("fd"),
            ("_T2".to_string(), Source::Fd(7))
        );
        for bad in [
            "TOKEN=hunter2value",
            "hunter2value",
            "2X=@/f",
            "A-B=@/f",
            "=hunter2value",
            "T=fd:hunter2value",
            "T=fd:1",
            "T=@",
            "PATH=@/f",
        ] {
            let e = parse_spec("--secret-env", OsStr::new(bad)).expect_err(bad);
            let text = e.to_string();
            assert!(text.starts_with("--secret-env"), "{text}");
            assert!(!text.contains("hunter2value"), "{bad}: {text}");
        }
        let e = parse_spec("--secret-env", OsStr::new("A-B=@/f")).expect_err("bad name");
        assert_eq!(e.name.as_deref(), Some("\"A-B\""));
    }

    /// A value given by mistake in place of NAME=@FILE (a base64 token
    /// ends in '=') is not echoed as if it were a name.
    #[test]
    fn a_value_mistaken_for_the_argument_is_not_echoed_as_a_name() {
        for bad in [
            "aHVudGVyMnZhbHVl=",
            "aHVudGVyMnZhbHVl==",
            "hunter2value+/x=",
            "hunter2value=",
        ] {
            let e = parse_spec("--secret-env", OsStr::new(bad)).expect_err(bad);
            let text = e.to_string();
            assert!(!text.contains("aHVudGVyMnZhbHVl"), "{bad}: {text}");
            assert!(!text.contains("hunter2value"), "{bad}: {text}");
            assert_eq!(e.name, None, "{bad}");
        }
    }

    #[test]
    fn names_are_portable_shell_names() {
        for ok in ["A", "_", "a_1", "TOKEN"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1A", "A=B", "A B", "A\0", "Ä", "PATH", &"A".repeat(257)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_nul_in_the_value_is_refused_without_the_value() {
        let e = SecretEnv::new("api", "T", Secret::from(b"abc\0hunter2value".to_vec())).expect_err("nul");
        assert!(!e.to_string().contains("hunter2value"), "{e}");
        let ok = SecretEnv::new("api", "T", Secret::from("hunter2value".to_string())).expect("ok");
        assert_eq!(format!("{ok:?}"), "T=<redacted>");
        assert_eq!(format!("{:?}", ok.value()), "<redacted>");
    }

    #[test]
    fn zeroize_vec_clears_the_whole_buffer() {
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(b"hunter2value");
        v.truncate(6);
        let ptr = v.as_ptr();
        zeroize_vec(&mut v);
        assert_eq!(v.as_ptr(), ptr, "no reallocation");
        assert!(v.is_empty());
        // SAFETY: the buffer (capacity 16) is still allocated and was
        // fully initialised by zeroize_vec's resize.
        let all = unsafe { std::slice::from_raw_parts(ptr, 16) };
        assert!(all.iter().all(|&b| b == 0), "{all:?}");
    }

    #[test]
    fn files_are_read_bounded_with_one_newline_stripped() {
        let dir = std::env::temp_dir().join(format!("cordon-secret-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("tok");
        std::fs::write(&f, "s3cret\n\n").expect("write");
        assert_eq!(Secret::read_file(&f).expect("read").expose(), b"s3cret\n");
        std::fs::write(&f, vec![b'x'; MAX_SECRET_BYTES]).expect("write");
        assert_eq!(
            Secret::read_file(&f).expect("at the bound").expose().len(),
            MAX_SECRET_BYTES
        );
        std::fs::write(&f, vec![b'x'; MAX_SECRET_BYTES + 1]).expect("write");
        assert!(Secret::read_file(&f)
            .expect_err("too big")
            .contains("larger than"));
        std::fs::write(&f, "\n").expect("write");
        assert!(Secret::read_file(&f).expect_err("empty").contains("empty"));
        std::fs::write(&f, "a\0b").expect("write");
        assert!(Secret::read_file(&f).expect_err("nul").contains("NUL"));
        let link = dir.join("link");
        std::os::unix::fs::symlink(&f, &link).expect("symlink");
        assert!(Secret::read_file(&link)
            .expect_err("link")
            .contains("symbolic link"));
        assert!(Secret::read_file(&dir).expect_err("dir").contains("directory"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A FIFO opened for reading and writing (`fd:3 3<>FIFO`) makes cordon
    /// itself a writer: reading it to its end would never end.
    #[test]
    fn a_fifo_open_for_writing_too_is_refused_without_hanging() {
        let dir = std::env::temp_dir().join(format!("cordon-secret-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).expect("path");
        // SAFETY: c is a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        let mut rw = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .expect("open rw");
        std::io::Write::write_all(&mut rw, b"hunter2value\n").expect("write");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(Secret::read_fd(OwnedFd::from(rw)).map(|_| ()));
        });
        let e = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("read_fd hangs on a FIFO it holds the write end of")
            .expect_err("refused");
        assert!(e.contains("FIFO"), "{e}");
        assert!(!e.contains("hunter2value"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A pipe whose read end is non-blocking (as a parent written in an
    /// event loop hands it over) is waited on, not refused because the
    /// writer has not written yet.
    #[test]
    fn a_non_blocking_pipe_is_waited_on() {
        let mut fds = [0; 2];
        // SAFETY: fds is an array of two ints for pipe2 to fill.
        let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        assert_eq!(r, 0, "pipe2");
        // SAFETY: pipe2 just opened both; each is owned once, here.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            let mut w = File::from(w);
            std::io::Write::write_all(&mut w, b"late").expect("write");
        });
        let got = Secret::read_fd(r).expect("read");
        assert_eq!(got.expose(), b"late");
        writer.join().expect("writer");
    }

    /// A symbolic link planted for a directory on the path (`out/sub ->
    /// /root/.ssh`) would hand another file to the payload just as a link
    /// for the file itself would.
    #[test]
    fn a_link_in_the_directory_path_is_refused() {
        let dir = std::env::temp_dir().join(format!("cordon-secret-dirlink-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("real")).expect("dir");
        std::fs::write(dir.join("real/tok"), "hunter2value").expect("write");
        std::os::unix::fs::symlink(dir.join("real"), dir.join("via")).expect("symlink");
        assert_eq!(
            Secret::read_file(&dir.join("real/tok")).expect("direct").expose(),
            b"hunter2value"
        );
        let e = Secret::read_file(&dir.join("via/tok")).expect_err("through a link");
        assert!(e.contains("symbolic link"), "{e}");
        assert!(!e.contains("hunter2value"), "{e}");
        for magic in ["/proc/self/fd/0", "/dev/stdin", "/proc/self/root/etc/hostname"] {
            let e = Secret::read_file(Path::new(magic)).expect_err(magic);
            assert!(e.contains("symbolic link"), "{magic}: {e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
