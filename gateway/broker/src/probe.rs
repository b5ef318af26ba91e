//! Start-up check: the broker is up once it accepts an MQTT CONNECT.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_millis(500);
const CLIENT_ID: &[u8] = b"sluice-broker-probe";

/// Protocol level byte of the CONNECT packet.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Version {
    V4,
    V5,
}

/// CONNECT with a clean session and a 10 s keep-alive (rumqttd rejects 0).
fn connect_packet(version: Version) -> Vec<u8> {
    let (level, properties): (u8, &[u8]) = match version {
        Version::V4 => (4, &[]),
        Version::V5 => (5, &[0]),
    };
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', level, 0b0000_0010, 0, 10];
    body.extend_from_slice(properties);
    body.extend_from_slice(&(CLIENT_ID.len() as u16).to_be_bytes());
    body.extend_from_slice(CLIENT_ID);
    // The packet is far below 128 bytes, so the remaining length is one byte.
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend_from_slice(&body);
    packet
}

/// Connects, expects a successful CONNACK, then disconnects cleanly.
pub(crate) fn mqtt_connect(addr: SocketAddr, version: Version) -> Result<(), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(&connect_packet(version))
        .map_err(|e| format!("send CONNECT: {e}"))?;
    // CONNACK: type, remaining length, session-present flags, return code.
    let mut ack = [0u8; 4];
    stream
        .read_exact(&mut ack)
        .map_err(|e| format!("read CONNACK: {e}"))?;
    if ack[0] != 0x20 || ack[3] != 0 {
        return Err(format!("unexpected CONNACK {ack:02x?}"));
    }
    stream
        .write_all(&[0xE0, 0])
        .map_err(|e| format!("send DISCONNECT: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_connect_packet_is_well_formed() {
        let p = connect_packet(Version::V4);
        assert_eq!(p[0], 0x10);
        assert_eq!(p[1] as usize, p.len() - 2);
        assert_eq!(&p[2..9], &[0, 4, b'M', b'Q', b'T', b'T', 4]);
        assert_eq!(&p[p.len() - CLIENT_ID.len()..], CLIENT_ID);
    }

    #[test]
    fn v5_connect_packet_carries_empty_properties() {
        let p = connect_packet(Version::V5);
        assert_eq!(p[1] as usize, p.len() - 2);
        assert_eq!(p[8], 5);
        assert_eq!(p[12], 0, "property length after keep-alive");
    }

    #[test]
    fn probing_a_closed_port_fails() {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        assert!(
            mqtt_connect(addr, Version::V4)
                .unwrap_err()
                .starts_with("connect:")
        );
    }
}
