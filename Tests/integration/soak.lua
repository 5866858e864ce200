-- wrk script for the soak test: a mix of requests, in a fixed rotation.
-- 7 in 10 hello, 1 a streamed response, 1 a 64 KiB upload, 1 an application
-- that throws (the intended 500s).
local body = string.rep("u", 65536)
local n = 0
request = function()
    n = n + 1
    local k = n % 10
    if k == 7 then
        return wrk.format("GET", "/stream?n=20")
    elseif k == 8 then
        return wrk.format("POST", "/echo", {["Content-Type"] = "application/octet-stream"}, body)
    elseif k == 9 then
        return wrk.format("GET", "/misbehave?how=throw-before")
    end
    return wrk.format("GET", "/hello")
end
