-- wrk: twenty request headers for the headers scenario.
for i = 1, 20 do
    wrk.headers["X-Request-Header-" .. i] = "value-" .. i
end
