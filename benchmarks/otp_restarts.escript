#!/usr/bin/env escript
%% Erlang/OTP's own supervisor restarting a child that crashes on every start:
%% the comparison for otp_py's in-process restart throughput (benchmarks/throughput.py).
%%
%%   escript otp_restarts.escript TOTAL BATCH
%%
%% A one_for_one supervisor with intensity out of the way (10^9 restarts in 1 s)
%% runs one permanent child, a plain linked process (no proc_lib: no crash report
%% per crash). Each generation stamps erlang:monotonic_time(nanosecond) when it
%% starts and just before it exits with reason crash; the last generation of a
%% batch stops crashing and tells the script, which kills that supervisor and
%% starts the next batch with a fresh one. The default logger handler is removed,
%% so the supervisor's reports are built and dropped (as otp_py's are by the
%% NullHandler of its logger), not printed.
%%
%% Why batches: supervisor:add_restart/3 keeps every restart of the last period in
%% a list it walks on each restart, so with intensity out of the way a restart
%% costs more the more restarts the last second saw (about 4,600/s after 20,000
%% restarts in a row, against 26,000/s over 2,000). Batches of BATCH restarts keep
%% that list short: the figure is the supervisor's restart path, not its bookkeeping.
%%
%% Prints two lines: the restart rate over all batches (restarts per second of the
%% time spent inside batches), then the restart gaps in ns (start of generation
%% i+1 minus exit of generation i).
-module(otp_restarts).
-mode(compile).
-behaviour(supervisor).
-export([main/1, init/1, start_child/2, child/2]).

main([TotalText, BatchText]) ->
    Total = list_to_integer(TotalText),
    Batch = list_to_integer(BatchText),
    logger:remove_handler(default),
    batch(Batch),  % warm-up batch, dropped
    Batches = max(1, Total div Batch),
    {Restarts, Span, Gaps} = run(Batches, Batch, 0, 0, []),
    io:format("~.3f~n", [Restarts * 1.0e9 / Span]),
    io:format("~s~n", [lists:join(" ", [integer_to_list(G) || G <- Gaps])]),
    halt(0).

run(0, _Batch, Restarts, Span, Gaps) ->
    {Restarts, Span, Gaps};
run(Left, Batch, Restarts, Span, Gaps) ->
    {R, S, G} = batch(Batch),
    run(Left - 1, Batch, Restarts + R, Span + S, G ++ Gaps).

batch(Size) ->
    Tab = ets:new(stamps, [set, public]),
    ets:insert(Tab, {count, 0}),
    {ok, Sup} = supervisor:start_link(?MODULE, {Tab, {self(), Size + 1}}),
    receive done -> ok after 120000 -> halt(2) end,
    unlink(Sup),
    exit(Sup, kill),
    Starts = [element(2, hd(ets:lookup(Tab, I))) || I <- lists:seq(1, Size + 1)],
    Exits = [element(3, hd(ets:lookup(Tab, I))) || I <- lists:seq(1, Size)],
    ets:delete(Tab),
    Gaps = [S - E || {S, E} <- lists:zip(tl(Starts), Exits)],
    {Size, lists:last(Starts) - hd(Starts), Gaps}.

init({Tab, Main}) ->
    Flags = #{strategy => one_for_one, intensity => 1000000000, period => 1},
    Child = #{id => crasher, start => {?MODULE, start_child, [Tab, Main]},
              restart => permanent, shutdown => brutal_kill},
    {ok, {Flags, [Child]}}.

start_child(Tab, Main) ->
    {ok, spawn_link(?MODULE, child, [Tab, Main])}.

child(Tab, {Main, Last}) ->
    Start = erlang:monotonic_time(nanosecond),
    I = ets:update_counter(Tab, count, 1),
    case I >= Last of
        true ->
            ets:insert(Tab, {I, Start, none}),
            Main ! done,
            receive stop -> ok end;
        false ->
            Exit = erlang:monotonic_time(nanosecond),
            ets:insert(Tab, {I, Start, Exit}),
            exit(crash)
    end.
