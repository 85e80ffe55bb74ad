// SPDX-License-Identifier: GPL-2.0

//! ioctl requests the device does not have, derived from its list of ioctls
//! ([`message_slot::Ioctl::ALL`], uapi): the neighbours of each (another number, direction,
//! size or type) and two unrelated numbers. The device answers every one with `EINVAL` and
//! leaves the file's binding alone (message_slot(4)); the guest suite sends them all, the
//! fuzzer picks among them. An ioctl added to uapi is never among them.

use message_slot::ioctl_encoding::{io, ioc, IOC_NONE, IOC_READ, IOC_WRITE};
use message_slot::Ioctl;

/// The request's direction bits.
fn direction(cmd: u32) -> u32 {
    cmd >> 30
}

/// The request's type (the driver's letter: `MAJOR_NUM` for this device).
fn request_type(cmd: u32) -> u32 {
    (cmd >> 8) & 0xFF
}

/// The request's number within its type.
fn number(cmd: u32) -> u32 {
    cmd & 0xFF
}

/// The size of the request's argument.
fn size(cmd: u32) -> u32 {
    (cmd >> 16) & 0x3FFF
}

/// `cmd` as the macro that encodes it, e.g. `_IOW(235, 1, 4)`, for messages.
pub fn describe(cmd: u32) -> String {
    let (ty, nr, size) = (request_type(cmd), number(cmd), size(cmd));
    match direction(cmd) {
        IOC_NONE if size == 0 => format!("_IO({ty}, {nr})"),
        IOC_NONE => format!("_IOC(NONE, {ty}, {nr}, {size})"),
        IOC_WRITE => format!("_IOW({ty}, {nr}, {size})"),
        IOC_READ => format!("_IOR({ty}, {nr}, {size})"),
        _ => format!("_IOWR({ty}, {nr}, {size})"),
    }
}

/// Whether the device has an ioctl with request number `cmd`.
pub fn is_known(cmd: u32) -> bool {
    Ioctl::from_cmd(cmd).is_some()
}

/// Requests the device does not have, each once, with a description: for each of its ioctls
/// the next number and number 255 of its type, every other direction, an 8-byte argument
/// instead of its own, another type (`'k'` and the next one); then 0 and `0xdeadbeef`. None
/// is one of the VFS's generic ioctls (which the VFS answers before the driver sees them).
pub fn unknown_requests() -> Vec<(String, u32)> {
    let mut cmds = Vec::new();
    for ioctl in Ioctl::ALL {
        let cmd = ioctl.cmd();
        let (dir, ty, nr, size) = (direction(cmd), request_type(cmd), number(cmd), size(cmd));
        cmds.push(ioc(dir, ty, (nr + 1) & 0xFF, size));
        cmds.push(ioc(dir, ty, 0xFF, size));
        for other in [IOC_NONE, IOC_READ, IOC_WRITE, IOC_READ | IOC_WRITE] {
            if other == IOC_NONE {
                cmds.push(io(ty, nr));
            } else {
                cmds.push(ioc(other, ty, nr, size));
            }
        }
        cmds.push(ioc(dir, ty, nr, if size == 8 { 4 } else { 8 }));
        cmds.push(ioc(dir, u32::from(b'k'), nr, size));
        cmds.push(ioc(dir, (ty + 1) & 0xFF, nr, size));
    }
    cmds.extend([0, 0xDEAD_BEEF]);
    let mut requests: Vec<(String, u32)> = Vec::new();
    for cmd in cmds {
        if !is_known(cmd) && requests.iter().all(|&(_, seen)| seen != cmd) {
            requests.push((describe(cmd), cmd));
        }
    }
    requests
}

#[cfg(test)]
mod tests {
    use super::*;
    use message_slot::MSG_SLOT_CHANNEL;

    #[test]
    fn unknown_requests_are_unknown_and_distinct() {
        let requests = unknown_requests();
        for ioctl in Ioctl::ALL {
            assert!(requests.iter().all(|&(_, cmd)| cmd != ioctl.cmd()));
        }
        let mut cmds: Vec<u32> = requests.iter().map(|&(_, cmd)| cmd).collect();
        cmds.sort_unstable();
        cmds.dedup();
        assert_eq!(cmds.len(), requests.len());
    }

    #[test]
    fn unknown_requests_are_the_channel_ioctls_neighbours() {
        let cmds: Vec<u32> = unknown_requests().iter().map(|&(_, cmd)| cmd).collect();
        for cmd in [
            MSG_SLOT_CHANNEL + 1,
            MSG_SLOT_CHANNEL | 0xFF,
            (MSG_SLOT_CHANNEL & !(3 << 30)) | (2 << 30),
            MSG_SLOT_CHANNEL | (3 << 30),
            MSG_SLOT_CHANNEL & 0xFFFF,
            (MSG_SLOT_CHANNEL & !(0x3FFF << 16)) | (8 << 16),
            (MSG_SLOT_CHANNEL & !0xFF00) | (u32::from(b'k') << 8),
            MSG_SLOT_CHANNEL + 0x100,
            0,
            0xDEAD_BEEF,
        ] {
            assert!(cmds.contains(&cmd), "{cmd:#x} missing");
        }
        assert_eq!(describe(MSG_SLOT_CHANNEL), "_IOW(235, 0, 4)");
        assert_eq!(describe(MSG_SLOT_CHANNEL & 0xFFFF), "_IO(235, 0)");
    }
}
