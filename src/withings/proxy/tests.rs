use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            header::HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn names(map: &HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = map.keys().map(|k| k.as_str().to_owned()).collect();
    names.sort();
    names
}

#[test]
fn credentials_hop_by_hop_headers_and_those_connection_names_are_not_forwarded() {
    let incoming = headers(&[
        ("Authorization", "Bearer consumer-own"),
        ("Cookie", "session=1"),
        ("X-Admin-Token", "admin"),
        ("Withings-Account", "alice"),
        ("Connection", "keep-alive, X-Private-Hop"),
        ("X-Private-Hop", "1"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Authorization", "Basic x"),
        ("TE", "trailers"),
        ("Trailer", "X-Sum"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "h2c"),
        ("Host", "localhost:8080"),
        ("Content-Length", "12"),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Accept", "application/json"),
        ("X-Request-Id", "abc"),
    ]);
    let kept = forwarded(&incoming);
    assert_eq!(names(&kept), ["accept", "content-type", "x-request-id"]);
    assert_eq!(kept[header::CONTENT_TYPE], "application/x-www-form-urlencoded");
}

#[test]
fn an_answer_keeps_its_headers_but_hop_by_hop_ones_and_any_carrying_the_token() {
    let token = SecretString::from("the-access-token");
    let answer = headers(&[
        ("Content-Type", "text/csv; charset=utf-8"),
        ("Content-Length", "10"),
        ("Connection", "close, X-Hop"),
        ("X-Hop", "1"),
        ("Transfer-Encoding", "chunked"),
        ("X-Echo", "Bearer the-access-token"),
        ("Set-Cookie", "a=b"),
        ("X-Withings-Trace", "t"),
    ]);
    let kept = passed_back(&answer, &token);
    assert_eq!(names(&kept), ["content-type", "set-cookie", "x-withings-trace"]);
    assert_eq!(kept[header::CONTENT_TYPE], "text/csv; charset=utf-8");
}

#[test]
fn the_account_is_taken_out_of_the_query_and_the_rest_kept_as_sent() {
    assert_eq!(
        without_account("action=getmeas&account=alice&meastype=1"),
        "action=getmeas&meastype=1"
    );
    assert_eq!(without_account("account=alice"), "");
    assert_eq!(without_account("%61ccount=alice&a=%20b+c"), "a=%20b+c");
    assert_eq!(without_account("accounts=x&account"), "accounts=x");
    assert_eq!(without_account("a=1&&b=%2F"), "a=1&&b=%2F");
}

#[test]
fn the_upstream_url_is_the_api_url_s_path_then_the_consumer_s() {
    let base = Url::parse("https://wbsapi.withings.net").unwrap();
    let url = upstream_url(&base, "v2/measure", Some("action=getactivity&account=bob")).unwrap();
    assert_eq!(
        url.as_str(),
        "https://wbsapi.withings.net/v2/measure?action=getactivity"
    );
    let under = Url::parse("http://127.0.0.1:9/mock/").unwrap();
    let url = upstream_url(&under, "measure", Some("account=bob")).unwrap();
    assert_eq!(url.as_str(), "http://127.0.0.1:9/mock/measure");
    let url = upstream_url(&under, "a%20b/c", None).unwrap();
    assert_eq!(url.as_str(), "http://127.0.0.1:9/mock/a%20b/c");
}

#[test]
fn a_path_that_is_empty_or_climbs_is_refused() {
    let base = Url::parse("http://127.0.0.1:9/mock/").unwrap();
    for path in [
        "",
        "..",
        "../admin",
        "v2/../../x",
        "./measure",
        "%2e%2e/x",
        "..%2Fx",
        "x%2f%2E%2E",
        "ok/%2F..%2F",
        "%2E%2e/x",
        ".%2E/x",
        "v2/%2e",
        "a\\..\\..\\secret",
        "a%5C..%5csecret",
    ] {
        assert!(
            matches!(upstream_url(&base, path, None), Err(ProxyFailure::BadPath(_))),
            "{path}"
        );
    }
}

async fn next_frame(body: &mut CappedBody) -> Option<std::result::Result<Frame<Bytes>, String>> {
    let polled = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await;
    polled.map(|frame| frame.map_err(|e| e.to_string()))
}

#[tokio::test]
async fn a_body_is_passed_up_to_its_cap_and_cut_past_it() {
    let mut at_cap = CappedBody::new(Some(streamed(vec![b'x'; 100])), Bytes::new(), 100);
    let frame = next_frame(&mut at_cap).await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), vec![b'x'; 100]);
    assert!(next_frame(&mut at_cap).await.is_none());
    let mut over = CappedBody::new(Some(streamed(vec![b'y'; 101])), Bytes::new(), 100);
    let cut = next_frame(&mut over).await.unwrap().unwrap_err();
    assert_eq!(cut, "the answer is larger than the proxy's cap of 100 bytes");
}

#[tokio::test]
async fn the_bytes_read_first_come_first_and_count_towards_the_cap() {
    let first = Bytes::from_static(b"{\"status\":0,");
    let mut body = CappedBody::new(Some(streamed(vec![b'z'; 88])), first.clone(), 100);
    assert!(!body.is_end_stream());
    assert_eq!(
        next_frame(&mut body).await.unwrap().unwrap().into_data().unwrap(),
        first
    );
    assert_eq!(
        next_frame(&mut body).await.unwrap().unwrap().into_data().unwrap(),
        vec![b'z'; 88]
    );
    assert!(next_frame(&mut body).await.is_none());
    let mut over = CappedBody::new(Some(streamed(vec![b'z'; 89])), first, 100);
    next_frame(&mut over).await.unwrap().unwrap();
    assert!(next_frame(&mut over).await.unwrap().is_err());
    let mut whole = CappedBody::new(None, Bytes::from_static(b"{}"), 2);
    assert_eq!(
        next_frame(&mut whole).await.unwrap().unwrap().into_data().unwrap(),
        "{}"
    );
    assert!(whole.is_end_stream());
    assert!(next_frame(&mut whole).await.is_none());
}

#[tokio::test]
async fn a_chunk_larger_than_a_piece_comes_out_in_pieces_in_order_whole_and_still_capped() {
    let chunk: Vec<u8> = (0..2 * PIECE + 100).map(|i| (i % 251) as u8).collect();
    let cap = chunk.len() as u64 + 2;
    let first = Bytes::from_static(b"{\"");
    let mut body = CappedBody::new(Some(streamed(chunk.clone())), first.clone(), cap);
    let mut sizes = Vec::new();
    let mut passed = Vec::new();
    while let Some(frame) = next_frame(&mut body).await {
        let data = frame.unwrap().into_data().unwrap();
        sizes.push(data.len());
        passed.extend_from_slice(&data);
    }
    assert_eq!(sizes, [2, PIECE, PIECE, 100]);
    assert_eq!(passed, [&first[..], &chunk[..]].concat());
    assert!(body.is_end_stream());
    let mut over = CappedBody::new(Some(streamed(chunk)), first, cap - 1);
    next_frame(&mut over).await.unwrap().unwrap();
    let cut = next_frame(&mut over).await.unwrap().unwrap_err();
    assert_eq!(
        cut,
        format!("the answer is larger than the proxy's cap of {} bytes", cap - 1)
    );
}

#[test]
fn withings_status_is_read_from_a_whole_answer_or_from_the_start_of_one() {
    assert_eq!(
        status_of_whole(br#"{"status": 401, "body": {}, "error": "invalid_token"}"#),
        Some(401)
    );
    assert_eq!(status_of_whole(br#"{"body": {}, "status": 0}"#), Some(0));
    assert_eq!(status_of_whole(b"<html>busy</html>"), None);
    assert_eq!(status_of_whole(br#"{"status": "x"}"#), None);
    assert_eq!(
        status_in_prefix(br#" { "status" : 0, "body": {"measuregrps": ["#),
        Some(0)
    );
    assert_eq!(status_in_prefix(br#"{"status":601,"body""#), Some(601));
    assert_eq!(
        status_in_prefix(br#"{"body": {}, "status": 0"#),
        None,
        "not first: unknown"
    );
    assert_eq!(status_in_prefix(b"id,date\n1,2"), None);
}

#[test]
fn the_action_comes_from_the_query_or_the_form_and_reads_are_get_and_list() {
    let call = |query: Option<&str>, body: &'static str| Call {
        method: Method::POST,
        path: "measure".into(),
        query: query.map(str::to_owned),
        headers: HeaderMap::new(),
        body: Bytes::from_static(body.as_bytes()),
    };
    assert_eq!(
        call(None, "action=getmeas&meastype=1").action().as_deref(),
        Some("getmeas")
    );
    assert_eq!(call(Some("action=list"), "").action().as_deref(), Some("list"));
    assert_eq!(call(Some("account=alice"), "appli=1").action(), None);
    assert_eq!(
        call(Some("action=getmeas"), "action=getmeas").action().as_deref(),
        Some("getmeas")
    );
    for (query, body) in [
        (Some("action=getmeas"), "action=subscribe"),
        (None, "action=getmeas&action=revoke"),
    ] {
        let action = call(query, body).action();
        assert_eq!(action.as_deref(), Some(AMBIGUOUS_ACTION), "{query:?} {body}");
        assert!(!is_read(action.as_deref()), "two actions: a write, never sent twice");
    }
    for read in ["getmeas", "getactivity", "list", "get"] {
        assert!(is_read(Some(read)), "{read}");
    }
    for write in ["subscribe", "revoke", "update", ""] {
        assert!(!is_read(Some(write)), "{write}");
    }
    assert!(!is_read(None), "no action: not known to be a read");
}

#[test]
fn accept_encoding_is_the_proxy_s_own_so_an_answer_s_status_can_be_read() {
    let kept = forwarded(&headers(&[("Accept-Encoding", "gzip, br"), ("Accept", "*/*")]));
    assert_eq!(names(&kept), ["accept"]);
}

/// A body that comes in the chunks given.
struct Chunks(std::collections::VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }
}

fn answer_in(chunks: &[&[u8]]) -> StreamedBody {
    let chunks = Chunks(chunks.iter().map(|chunk| Bytes::copy_from_slice(chunk)).collect());
    http_body_util::BodyExt::boxed(http_body_util::BodyExt::map_err(chunks, |never| match never {}))
}

/// A body of one chunk.
fn streamed(bytes: impl Into<Bytes>) -> StreamedBody {
    answer_in(&[&bytes.into()])
}

async fn peeked(chunks: &[&[u8]], cap: u64) -> std::result::Result<(Vec<u8>, bool), &'static str> {
    let mut body = answer_in(chunks);
    match peek(&mut body, cap).await {
        Ok((first, ended)) => Ok((first.to_vec(), ended)),
        Err(Peeked::OverCap) => Err("over cap"),
        Err(Peeked::Failed(_)) => Err("failed"),
    }
}

#[tokio::test]
async fn the_peek_reads_whole_chunks_up_to_its_limit_and_says_whether_the_answer_ended() {
    assert_eq!(peeked(&[], 100).await, Ok((Vec::new(), true)));
    assert_eq!(
        peeked(&[b"{\"status\":0}"], 100).await,
        Ok((b"{\"status\":0}".to_vec(), true))
    );
    assert_eq!(
        peeked(&[b"{\"sta", b"tus\"", b":0}"], 100).await,
        Ok((b"{\"status\":0}".to_vec(), true))
    );
    let big = vec![b'x'; PEEK_LIMIT];
    assert_eq!(peeked(&[&big, b"more"], u64::MAX).await, Ok((big.clone(), false)));
    let half = vec![b'y'; PEEK_LIMIT / 2 + 1];
    let mut two_halves = half.clone();
    two_halves.extend_from_slice(&half);
    assert_eq!(
        peeked(&[&half, &half, b"more"], u64::MAX).await,
        Ok((two_halves, false))
    );
    assert_eq!(peeked(&[b"0123456789"], 9).await, Err("over cap"));
    assert_eq!(peeked(&[b"01234", b"56789"], 9).await, Err("over cap"));
    assert_eq!(peeked(&[b"012", b"345", b"6789"], 9).await, Err("over cap"));
}
