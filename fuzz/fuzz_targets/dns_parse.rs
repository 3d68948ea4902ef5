//! The DNS stub's parser must never panic on any datagram, and every reply
//! built from what it accepts must be well-formed.
//!
//! Checked for any bytes:
//! - `parse_query` returns (no panic); `answer_message` agrees with it
//!   (a reply exactly when the query parses or the error has an rcode);
//! - on success: the name is 1..=253 characters of lowercase `[a-z0-9_-]`
//!   labels of 1..=63 bytes joined by dots, the question bytes are the
//!   input's bytes from offset 12, and the reply for every `Answer` kind
//!   is at most 512 bytes and reads back (`check_reply`) with the same id,
//!   RD, the same question and the expected rcode and records;
//! - on failure: `error_reply` is `None` exactly for `Drop`, and otherwise
//!   a 12-byte header with the same id and no section that reads back.

#![no_main]

use std::net::Ipv4Addr;

use cordon::net::dns::{self, Answer, ParseError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = dns::parse_query(data);
    let via_loop = dns::answer_message(data, &|_| Answer::NxDomain);
    match parsed {
        Ok(q) => {
            assert!(via_loop.is_some());
            accepted(data, &q)
        }
        Err(e) => {
            assert_eq!(via_loop.is_some(), e != ParseError::Drop);
            refused(data, e)
        }
    }
});

fn accepted(data: &[u8], q: &dns::Query) {
    assert!(
        !q.name.is_empty() && q.name.len() <= dns::MAX_NAME,
        "{:?}",
        q.name
    );
    for label in q.name.split('.') {
        assert!((1..=dns::MAX_LABEL).contains(&label.len()), "{:?}", q.name);
        assert!(label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'));
    }
    let question = q.question_wire();
    assert_eq!(&data[12..12 + question.len()], question);
    assert_eq!(question.len(), q.name.len() + 2 + 4);
    let ip = Ipv4Addr::new(127, 1, 2, 3);
    for (ans, rcode) in [
        (Answer::A(ip), dns::RCODE_NOERROR),
        (Answer::NoData, dns::RCODE_NOERROR),
        (Answer::NxDomain, dns::RCODE_NXDOMAIN),
        (Answer::Refused, dns::RCODE_REFUSED),
        (Answer::ServFail, dns::RCODE_SERVFAIL),
    ] {
        let out = dns::reply(q, ans);
        assert!(out.len() <= dns::MAX_MESSAGE);
        let r = dns::check_reply(&out).unwrap_or_else(|e| panic!("{ans:?}: {e}"));
        assert_eq!(r.id, q.id);
        assert_eq!(r.rcode, rcode);
        assert_eq!(r.flags & 0x0100 != 0, q.rd);
        assert_eq!(r.question, question);
        let a = matches!(ans, Answer::A(_)) && q.qtype == dns::TYPE_A && q.qclass == dns::CLASS_IN;
        assert_eq!(r.answers, if a { vec![ip] } else { vec![] });
    }
}

fn refused(data: &[u8], e: ParseError) {
    let Some(rcode) = e.rcode() else {
        // Drop: too short, or a response.
        assert!(data.len() < 12 || data[2] & 0x80 != 0);
        assert!(dns::error_reply(data, dns::RCODE_FORMERR).is_none());
        return;
    };
    let out = dns::error_reply(data, rcode).expect("a readable header gets an error reply");
    assert_eq!(out.len(), 12);
    let r = dns::check_reply(&out).unwrap();
    assert_eq!((r.id, r.rcode), (u16::from_be_bytes([data[0], data[1]]), rcode));
    assert!(r.question.is_empty() && r.answers.is_empty());
}
