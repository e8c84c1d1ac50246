# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_bwacct_global_optspecs
    string join \n c/config= log= h/help V/version
end

function __fish_bwacct_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_bwacct_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_bwacct_using_subcommand
    set -l cmd (__fish_bwacct_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c bwacct -n "__fish_bwacct_needs_command" -s c -l config -d 'Configuration file' -r -F
complete -c bwacct -n "__fish_bwacct_needs_command" -l log -d 'Log filter (tracing\'s env-filter syntax), e.g. "debug" or "bwacct=debug"' -r
complete -c bwacct -n "__fish_bwacct_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c bwacct -n "__fish_bwacct_needs_command" -s V -l version -d 'Print version'
complete -c bwacct -n "__fish_bwacct_needs_command" -f -a "run" -d 'Capture live, flush every interval to the store; SIGTERM/SIGINT flush and exit'
complete -c bwacct -n "__fish_bwacct_needs_command" -f -a "replay" -d 'Count capture files (pcap, pcapng) into the store as if captured live, then print a summary'
complete -c bwacct -n "__fish_bwacct_needs_command" -f -a "report" -d 'Usage per host over a period'
complete -c bwacct -n "__fish_bwacct_needs_command" -f -a "check-config" -d 'Validate the configuration and print what it means'
complete -c bwacct -n "__fish_bwacct_needs_command" -f -a "quota" -d 'Allotment status per customer: used, allotment, percent, estimate, state, since'
complete -c bwacct -n "__fish_bwacct_needs_command" -f -a "events" -d 'Stored events: quota state changes and layer-2 alarms ([guard])'
complete -c bwacct -n "__fish_bwacct_needs_command" -f -a "shape" -d 'Traffic shaping of customers over their allotment: plan, apply or clear'
complete -c bwacct -n "__fish_bwacct_needs_command" -f -a "graph" -d 'Draw a usage graph (PNG or SVG) of addresses or networks, or write the static site'
complete -c bwacct -n "__fish_bwacct_needs_command" -f -a "serve" -d 'Serve the dashboard, the JSON API and /metrics from the store (no capture)'
complete -c bwacct -n "__fish_bwacct_needs_command" -f -a "import-cdf" -d 'Load BandwidthD\'s CDF logs (log.N.M.cdf) into the store, keeping history when switching'
complete -c bwacct -n "__fish_bwacct_needs_command" -f -a "prune" -d 'Delete what is older than the retention of each level (`run` prunes continuously)'
complete -c bwacct -n "__fish_bwacct_needs_command" -f -a "completions" -d 'Print a completion script for a shell'
complete -c bwacct -n "__fish_bwacct_needs_command" -f -a "manpage" -d 'Write the manual pages (bwacct.1 and one per subcommand)'
complete -c bwacct -n "__fish_bwacct_needs_command" -f -a "passwd" -d 'Print an argon2 hash of a password for `[web] users`. The password is read from the terminal (twice, not echoed) or from the first line of standard input'
complete -c bwacct -n "__fish_bwacct_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c bwacct -n "__fish_bwacct_using_subcommand run" -s c -l config -d 'Configuration file' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand run" -l log -d 'Log filter (tracing\'s env-filter syntax), e.g. "debug" or "bwacct=debug"' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c bwacct -n "__fish_bwacct_using_subcommand replay" -s c -l config -d 'Configuration file' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand replay" -l log -d 'Log filter (tracing\'s env-filter syntax), e.g. "debug" or "bwacct=debug"' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand replay" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c bwacct -n "__fish_bwacct_using_subcommand report" -l day -d 'One day, YYYY-MM-DD (in the report\'s time zone)' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand report" -l month -d 'One month, YYYY-MM' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand report" -l from -d 'Start (RFC 3339 or YYYY-MM-DD), inclusive' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand report" -l to -d 'End (RFC 3339 or YYYY-MM-DD), exclusive' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand report" -l by -d 'Rows per address' -r -f -a "ip\t''
customer\t''"
complete -c bwacct -n "__fish_bwacct_using_subcommand report" -l format -d 'Output format: table and html in human units, csv, json and cdf exact' -r -f -a "table\t'Aligned columns in human units (KiB, MiB, GiB)'
csv\t'Exact integers, one row per address, every class'
json\t'DESIGN.md\'s JSON shape, exact integers'
html\t'A self-contained page: graph of the period, top talkers, customers'
cdf\t'BandwidthD\'s CDF lines (`ip,time,sent x 8,received x 8`), time = the period\'s end'"
complete -c bwacct -n "__fish_bwacct_using_subcommand report" -l timezone -d 'Time zone for day and month boundaries, e.g. Europe/Berlin (default: `[report] timezone`)' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand report" -l top -d 'Only the N largest rows' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand report" -l sensor -d 'Only this sensor\'s counts (default: the sum over sensors)' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand report" -l out -d 'Write to a file instead of standard output; "{date}" in the name becomes the period\'s first day (YYYY-MM-DD), e.g. /var/lib/bwacct/reports/usage-{date}.html' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand report" -s c -l config -d 'Configuration file' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand report" -l log -d 'Log filter (tracing\'s env-filter syntax), e.g. "debug" or "bwacct=debug"' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand report" -l names -d 'Add each address\'s name: its `[names] static` name, else its customer\'s, else (with `[names] reverse_dns = true`) its PTR name. JSON rows get "name", CSV a last column'
complete -c bwacct -n "__fish_bwacct_using_subcommand report" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c bwacct -n "__fish_bwacct_using_subcommand check-config" -s c -l config -d 'Configuration file' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand check-config" -l log -d 'Log filter (tracing\'s env-filter syntax), e.g. "debug" or "bwacct=debug"' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand check-config" -s h -l help -d 'Print help'
complete -c bwacct -n "__fish_bwacct_using_subcommand quota" -l at -d 'Status as of this time (RFC 3339 or a date; default now), e.g. the time of replayed data' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand quota" -l format -r -f -a "table\t''
json\t''"
complete -c bwacct -n "__fish_bwacct_using_subcommand quota" -s c -l config -d 'Configuration file' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand quota" -l log -d 'Log filter (tracing\'s env-filter syntax), e.g. "debug" or "bwacct=debug"' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand quota" -s h -l help -d 'Print help'
complete -c bwacct -n "__fish_bwacct_using_subcommand events" -l customer -d 'Only this customer\'s events' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand events" -l limit -d 'The newest N events' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand events" -l kind -d 'Only this kind: quota, mac_flood, arp_spoof, arp_reply_flood or spoofed_source' -r -f -a "quota\t''
mac_flood\t''
arp_spoof\t''
arp_reply_flood\t''
spoofed_source\t''"
complete -c bwacct -n "__fish_bwacct_using_subcommand events" -l format -r -f -a "table\t''
json\t''"
complete -c bwacct -n "__fish_bwacct_using_subcommand events" -s c -l config -d 'Configuration file' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand events" -l log -d 'Log filter (tracing\'s env-filter syntax), e.g. "debug" or "bwacct=debug"' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand events" -s h -l help -d 'Print help'
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and not __fish_seen_subcommand_from plan apply clear help" -s c -l config -d 'Configuration file' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and not __fish_seen_subcommand_from plan apply clear help" -l log -d 'Log filter (tracing\'s env-filter syntax), e.g. "debug" or "bwacct=debug"' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and not __fish_seen_subcommand_from plan apply clear help" -s h -l help -d 'Print help'
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and not __fish_seen_subcommand_from plan apply clear help" -f -a "plan" -d 'Print the commands that should be in effect: for every customer over its allotment, or for the one named even if it is not'
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and not __fish_seen_subcommand_from plan apply clear help" -f -a "apply" -d 'Run those commands, skipping what is already in effect, and record them'
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and not __fish_seen_subcommand_from plan apply clear help" -f -a "clear" -d 'Undo exactly what apply recorded (for one customer, or all)'
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and not __fish_seen_subcommand_from plan apply clear help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and __fish_seen_subcommand_from plan" -l at -d 'Judge who is over as of this time (RFC 3339 or a date; default now)' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and __fish_seen_subcommand_from plan" -s c -l config -d 'Configuration file' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and __fish_seen_subcommand_from plan" -l log -d 'Log filter (tracing\'s env-filter syntax), e.g. "debug" or "bwacct=debug"' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and __fish_seen_subcommand_from plan" -s h -l help -d 'Print help'
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and __fish_seen_subcommand_from apply" -l at -d 'Judge who is over as of this time (RFC 3339 or a date; default now)' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and __fish_seen_subcommand_from apply" -s c -l config -d 'Configuration file' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and __fish_seen_subcommand_from apply" -l log -d 'Log filter (tracing\'s env-filter syntax), e.g. "debug" or "bwacct=debug"' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and __fish_seen_subcommand_from apply" -s h -l help -d 'Print help'
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and __fish_seen_subcommand_from clear" -s c -l config -d 'Configuration file' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and __fish_seen_subcommand_from clear" -l log -d 'Log filter (tracing\'s env-filter syntax), e.g. "debug" or "bwacct=debug"' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and __fish_seen_subcommand_from clear" -s h -l help -d 'Print help'
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and __fish_seen_subcommand_from help" -f -a "plan" -d 'Print the commands that should be in effect: for every customer over its allotment, or for the one named even if it is not'
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and __fish_seen_subcommand_from help" -f -a "apply" -d 'Run those commands, skipping what is already in effect, and record them'
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and __fish_seen_subcommand_from help" -f -a "clear" -d 'Undo exactly what apply recorded (for one customer, or all)'
complete -c bwacct -n "__fish_bwacct_using_subcommand shape; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c bwacct -n "__fish_bwacct_using_subcommand graph" -l ip -d 'Addresses or networks, summed into one graph (repeat, or separate with commas)' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand graph" -l period -d 'A window ending at --end (default: now): day, week, month (30 days) or year (365 days)' -r -f -a "day\t''
week\t''
month\t''
year\t''"
complete -c bwacct -n "__fish_bwacct_using_subcommand graph" -l end -d 'End of the window (RFC 3339 or YYYY-MM-DD)' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand graph" -l day -d 'One day, YYYY-MM-DD (UTC)' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand graph" -l month -d 'One month, YYYY-MM' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand graph" -l from -d 'Start (RFC 3339 or YYYY-MM-DD), inclusive' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand graph" -l to -d 'End (RFC 3339 or YYYY-MM-DD), exclusive' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand graph" -l format -d 'Image format (default: from --out\'s extension, else png)' -r -f -a "png\t''
svg\t''"
complete -c bwacct -n "__fish_bwacct_using_subcommand graph" -l out -d 'The picture\'s file' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand graph" -l width -r
complete -c bwacct -n "__fish_bwacct_using_subcommand graph" -l height -r
complete -c bwacct -n "__fish_bwacct_using_subcommand graph" -l sensor -d 'Only this sensor\'s counts (default: the sum over sensors)' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand graph" -l site -d 'Write the static site into DIR: index.html (top talkers) and a page per host with its day, week, month and year graphs' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand graph" -l top -d 'With --site: pages for the N busiest hosts' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand graph" -s c -l config -d 'Configuration file' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand graph" -l log -d 'Log filter (tracing\'s env-filter syntax), e.g. "debug" or "bwacct=debug"' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand graph" -s h -l help -d 'Print help'
complete -c bwacct -n "__fish_bwacct_using_subcommand serve" -l listen -d 'Address and port to listen on (default: [web] listen, else 127.0.0.1:8080)' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand serve" -s c -l config -d 'Configuration file' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand serve" -l log -d 'Log filter (tracing\'s env-filter syntax), e.g. "debug" or "bwacct=debug"' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand serve" -s h -l help -d 'Print help'
complete -c bwacct -n "__fish_bwacct_using_subcommand import-cdf" -l interval -d 'Seconds per line, for files not named log.N.M.cdf' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand import-cdf" -l sensor -d 'Store under this sensor name (default: the configured sensor)' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand import-cdf" -s c -l config -d 'Configuration file' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand import-cdf" -l log -d 'Log filter (tracing\'s env-filter syntax), e.g. "debug" or "bwacct=debug"' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand import-cdf" -l skip-bad-lines -d 'Skip lines that cannot be read (counted and listed) instead of stopping at the first'
complete -c bwacct -n "__fish_bwacct_using_subcommand import-cdf" -l force -d 'Import files even if the same content was imported before'
complete -c bwacct -n "__fish_bwacct_using_subcommand import-cdf" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c bwacct -n "__fish_bwacct_using_subcommand prune" -s c -l config -d 'Configuration file' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand prune" -l log -d 'Log filter (tracing\'s env-filter syntax), e.g. "debug" or "bwacct=debug"' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand prune" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c bwacct -n "__fish_bwacct_using_subcommand completions" -s c -l config -d 'Configuration file' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand completions" -l log -d 'Log filter (tracing\'s env-filter syntax), e.g. "debug" or "bwacct=debug"' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand completions" -s h -l help -d 'Print help'
complete -c bwacct -n "__fish_bwacct_using_subcommand manpage" -l out -d 'Directory for the pages (default: print bwacct.1 to standard output)' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand manpage" -s c -l config -d 'Configuration file' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand manpage" -l log -d 'Log filter (tracing\'s env-filter syntax), e.g. "debug" or "bwacct=debug"' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand manpage" -s h -l help -d 'Print help'
complete -c bwacct -n "__fish_bwacct_using_subcommand passwd" -s c -l config -d 'Configuration file' -r -F
complete -c bwacct -n "__fish_bwacct_using_subcommand passwd" -l log -d 'Log filter (tracing\'s env-filter syntax), e.g. "debug" or "bwacct=debug"' -r
complete -c bwacct -n "__fish_bwacct_using_subcommand passwd" -s h -l help -d 'Print help'
complete -c bwacct -n "__fish_bwacct_using_subcommand help; and not __fish_seen_subcommand_from run replay report check-config quota events shape graph serve import-cdf prune completions manpage passwd help" -f -a "run" -d 'Capture live, flush every interval to the store; SIGTERM/SIGINT flush and exit'
complete -c bwacct -n "__fish_bwacct_using_subcommand help; and not __fish_seen_subcommand_from run replay report check-config quota events shape graph serve import-cdf prune completions manpage passwd help" -f -a "replay" -d 'Count capture files (pcap, pcapng) into the store as if captured live, then print a summary'
complete -c bwacct -n "__fish_bwacct_using_subcommand help; and not __fish_seen_subcommand_from run replay report check-config quota events shape graph serve import-cdf prune completions manpage passwd help" -f -a "report" -d 'Usage per host over a period'
complete -c bwacct -n "__fish_bwacct_using_subcommand help; and not __fish_seen_subcommand_from run replay report check-config quota events shape graph serve import-cdf prune completions manpage passwd help" -f -a "check-config" -d 'Validate the configuration and print what it means'
complete -c bwacct -n "__fish_bwacct_using_subcommand help; and not __fish_seen_subcommand_from run replay report check-config quota events shape graph serve import-cdf prune completions manpage passwd help" -f -a "quota" -d 'Allotment status per customer: used, allotment, percent, estimate, state, since'
complete -c bwacct -n "__fish_bwacct_using_subcommand help; and not __fish_seen_subcommand_from run replay report check-config quota events shape graph serve import-cdf prune completions manpage passwd help" -f -a "events" -d 'Stored events: quota state changes and layer-2 alarms ([guard])'
complete -c bwacct -n "__fish_bwacct_using_subcommand help; and not __fish_seen_subcommand_from run replay report check-config quota events shape graph serve import-cdf prune completions manpage passwd help" -f -a "shape" -d 'Traffic shaping of customers over their allotment: plan, apply or clear'
complete -c bwacct -n "__fish_bwacct_using_subcommand help; and not __fish_seen_subcommand_from run replay report check-config quota events shape graph serve import-cdf prune completions manpage passwd help" -f -a "graph" -d 'Draw a usage graph (PNG or SVG) of addresses or networks, or write the static site'
complete -c bwacct -n "__fish_bwacct_using_subcommand help; and not __fish_seen_subcommand_from run replay report check-config quota events shape graph serve import-cdf prune completions manpage passwd help" -f -a "serve" -d 'Serve the dashboard, the JSON API and /metrics from the store (no capture)'
complete -c bwacct -n "__fish_bwacct_using_subcommand help; and not __fish_seen_subcommand_from run replay report check-config quota events shape graph serve import-cdf prune completions manpage passwd help" -f -a "import-cdf" -d 'Load BandwidthD\'s CDF logs (log.N.M.cdf) into the store, keeping history when switching'
complete -c bwacct -n "__fish_bwacct_using_subcommand help; and not __fish_seen_subcommand_from run replay report check-config quota events shape graph serve import-cdf prune completions manpage passwd help" -f -a "prune" -d 'Delete what is older than the retention of each level (`run` prunes continuously)'
complete -c bwacct -n "__fish_bwacct_using_subcommand help; and not __fish_seen_subcommand_from run replay report check-config quota events shape graph serve import-cdf prune completions manpage passwd help" -f -a "completions" -d 'Print a completion script for a shell'
complete -c bwacct -n "__fish_bwacct_using_subcommand help; and not __fish_seen_subcommand_from run replay report check-config quota events shape graph serve import-cdf prune completions manpage passwd help" -f -a "manpage" -d 'Write the manual pages (bwacct.1 and one per subcommand)'
complete -c bwacct -n "__fish_bwacct_using_subcommand help; and not __fish_seen_subcommand_from run replay report check-config quota events shape graph serve import-cdf prune completions manpage passwd help" -f -a "passwd" -d 'Print an argon2 hash of a password for `[web] users`. The password is read from the terminal (twice, not echoed) or from the first line of standard input'
complete -c bwacct -n "__fish_bwacct_using_subcommand help; and not __fish_seen_subcommand_from run replay report check-config quota events shape graph serve import-cdf prune completions manpage passwd help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c bwacct -n "__fish_bwacct_using_subcommand help; and __fish_seen_subcommand_from shape" -f -a "plan" -d 'Print the commands that should be in effect: for every customer over its allotment, or for the one named even if it is not'
complete -c bwacct -n "__fish_bwacct_using_subcommand help; and __fish_seen_subcommand_from shape" -f -a "apply" -d 'Run those commands, skipping what is already in effect, and record them'
complete -c bwacct -n "__fish_bwacct_using_subcommand help; and __fish_seen_subcommand_from shape" -f -a "clear" -d 'Undo exactly what apply recorded (for one customer, or all)'
