-- A day of ordinary change on the benchmark database (scripts/bench-data.sql), for measuring
-- what a second backup adds (repository/splitter_bench_test.go): a few thousand plays, a few
-- thousand ratings new or changed, some playlist edits. Independent of the scale; run with
-- psql -v ON_ERROR_STOP=1. Deterministic apart from random(), which only picks values.

\set ON_ERROR_STOP 1

select max(id) as max_user from users \gset
select max(id) as max_track from tracks \gset
select max(played_at) as last_play from play_history \gset
-- The generated playlists only: their ids have no gaps (the seed deleted two ids below them).
select min(id) as first_playlist, max(id) as max_playlist from playlists where name like 'Bench Playlist %' \gset

begin;

-- 5000 plays during the day after the last one, appended as the app appends them.
insert into play_history (user_id, track_id, session_id, played_at, played_ms, client)
select 1 + (random() * (:max_user - 1))::bigint, 1 + (random() * (:max_track - 1))::bigint,
       nextval('play_session_seq'),
       timestamptz :'last_play' + i * interval '17 seconds',
       (random() * 600000)::int,
       (array['web', 'ios', 'android', 'subsonic', 'desktop'])[1 + (random() * 4)::int]
from generate_series(1, 5000) as i;

-- 2000 ratings given (new, or changed when the pair was rated before) ...
-- (one row per pair: ON CONFLICT cannot update a row twice, and small data sets draw pairs twice)
insert into ratings (user_id, track_id, stars, rated_at)
select distinct on (user_id, track_id) user_id, track_id, stars, rated_at
from (select 1 + (random() * (:max_user - 1))::bigint as user_id, 1 + (random() * (:max_track - 1))::bigint as track_id,
             (1 + random() * 4)::smallint as stars, timestamptz :'last_play' + i * interval '40 seconds' as rated_at
      from generate_series(1, 2000) as i) as drawn
on conflict (user_id, track_id) do update set stars = excluded.stars, rated_at = excluded.rated_at;

-- ... and 1500 existing ones changed, scattered over the table.
update ratings set stars = 1 + stars % 5, rated_at = timestamptz :'last_play' + interval '1 hour'
where id in (select id from ratings tablesample bernoulli (1) limit 1500);

-- Playlists: 10 new ones, 300 tracks added to existing ones, 150 removed, 80 renamed or touched.
insert into playlists (owner_id, name, description, is_public, created_at, updated_at)
select 1 + i % :max_user, format('New Mix %s', i), 'made today', i % 2 = 0,
       timestamptz :'last_play', timestamptz :'last_play'
from generate_series(1, 10) as i;

insert into playlist_tracks (playlist_id, track_id, position, added_at)
select :first_playlist + (i * 7919) % (:max_playlist - :first_playlist + 1),
       1 + (random() * (:max_track - 1))::bigint,
       900000 + i, timestamptz :'last_play' + i * interval '1 minute'
from generate_series(1, 300) as i
on conflict (playlist_id, position) do nothing;

delete from playlist_tracks where id in (select id from playlist_tracks tablesample bernoulli (1) limit 150);

update playlists set name = name || ' (edited)', updated_at = timestamptz :'last_play'
where id in (select id from playlists tablesample bernoulli (5) limit 80);

commit;
