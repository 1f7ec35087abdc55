{#- An error_type (collector/loadgen.py) as the verb phrase a sentence counts it with: "12 timed out". -#}
{% macro error_type_phrase(error_type) -%}
    case {{ error_type }}
        when 'timeout' then 'timed out'
        when 'http_error' then 'got an HTTP error'
        when 'connect_error' then 'could not connect'
        when 'connection_reset' then 'lost the connection'
        when 'stream_cut' then 'had their stream cut'
        when 'malformed_response' then 'got a malformed reply'
        when 'client_error' then 'failed in the client'
        when 'cancelled' then 'were cut off by the interruption'
        else coalesce('failed (' || {{ error_type }} || ')', 'failed')
    end
{%- endmacro %}
