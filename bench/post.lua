-- wrk: POST the form of a Withings `getmeas` call (bench/proxy.sh,
-- bench/proxy.py), the same body to the sandbox and through `serve`; the
-- bearer comes with wrk's -H.
wrk.method = "POST"
wrk.body = "action=getmeas&meastype=1&category=1"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
