-- Bulk Echo-shaped rows for scripts/bench.sh, on top of e2e/testdata/schema.sql (which creates
-- the tables and a small sample). Run with psql -v scale=N: scale 1 makes the database about
-- 1 GB as pg_database_size reports it, most of it play_history.
--
-- Speed matters more than realism of every value: foreign-key triggers are off during the load
-- (the values are valid by construction, so a restore that re-creates the constraints passes)
-- and play_history's indexes are built once, after its rows are in.

\set ON_ERROR_STOP 1

select greatest(1, round(2000 * :scale))::bigint    as n_users,
       greatest(1, round(20000 * :scale))::bigint   as n_artists,
       greatest(1, round(60000 * :scale))::bigint   as n_albums,
       greatest(1, round(300000 * :scale))::bigint  as n_tracks,
       greatest(1, round(10000 * :scale))::bigint   as n_playlists,
       greatest(1, round(300000 * :scale))::bigint  as n_playlist_tracks,
       greatest(1, round(300000 * :scale))::bigint  as n_ratings,
       greatest(1, round(5600000 * :scale))::bigint as n_plays
\gset

set session_replication_role = replica; -- no FK triggers during the load
set synchronous_commit = off;
set maintenance_work_mem = '256MB';

begin;

insert into users (username, email, password_hash, role, settings, avatar, created_at, last_login_at)
select format('bench%s', i), format('bench%s@echo.example', i),
       '$argon2id$v=19$m=65536,t=3,p=4$' || md5('salt' || i) || '$' || md5('hash' || i),
       (case when i % 20 = 0 then 'guest' else 'user' end)::user_role,
       jsonb_build_object('theme', case when i % 2 = 0 then 'dark' else 'light' end, 'volume', i % 100),
       case when i % 3 = 0 then decode(md5('avatar' || i) || md5('x' || i), 'hex') end,
       timestamptz '2023-01-01 00:00:00+00' + i * interval '37 minutes',
       timestamptz '2025-01-01 00:00:00+00' + (random() * 300) * interval '1 day'
from generate_series(1, :n_users) as i;

insert into artists (name, sort_name, mbid, image_path, biography, created_at)
select format('Bench Artist %s', i), format('Bench Artist %s', lpad(i::text, 7, '0')),
       md5('bench-artist' || i)::uuid,
       format('metadata/artists/%s.jpg', i),
       case when i % 4 = 0 then repeat(format('Artist %s formed in %s and toured widely. ', i, 1950 + i % 75), 1 + i % 6) end,
       timestamptz '2023-01-01 00:00:00+00' + i * interval '1 minute'
from generate_series(1, :n_artists) as i;

-- The seed sample already has rows, so new rows reference ids by the tables' current ranges.
select max(id) as max_user from users \gset
select max(id) as max_artist from artists \gset

insert into albums (artist_id, title, year, cover_path, genres, created_at)
select 1 + (i * 7919) % :max_artist, format('Bench Album %s', i), 1955 + i % 70,
       format('covers/%s.jpg', i),
       array[(array['rock', 'jazz', 'ambient', 'electronic', 'folk', 'soul', 'pop'])[i % 7 + 1]],
       timestamptz '2023-01-01 00:00:00+00' + i * interval '20 seconds'
from generate_series(1, :n_albums) as i;

select max(id) as max_album from albums \gset

insert into tracks (album_id, disc_number, track_number, title, duration_ms, path, bitrate_kbps, replay_gain, created_at)
select 1 + (i - 1) % :max_album, (1 + i % 2)::smallint, (1 + i / :max_album % 30)::smallint,
       format('Bench Track %s', i), 60000 + (random() * 540000)::int,
       format('/mnt/music/bench/%s/%s.flac', 1 + (i - 1) % :max_album, i),
       (array[128, 192, 256, 320, 1411])[1 + i % 5], round((random() * 20 - 10)::numeric, 2),
       timestamptz '2023-01-01 00:00:00+00' + i * interval '3 seconds'
from generate_series(1, :n_tracks) as i;

select max(id) as max_track from tracks \gset

insert into playlists (owner_id, name, description, is_public, created_at, updated_at)
select 1 + i % :max_user, format('Bench Playlist %s', i),
       case when i % 3 = 0 then format('Mix %s for late nights', i) end, i % 4 = 0,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '7 minutes',
       timestamptz '2024-06-01 00:00:00+00' + i * interval '7 minutes'
from generate_series(1, :n_playlists) as i;

-- Only the new playlists: the seed deleted two ids below them.
select min(id) as first_playlist, max(id) as max_playlist from playlists where name like 'Bench Playlist %' \gset

-- (playlist, position) is unique: position counts how many times the playlist came round.
insert into playlist_tracks (playlist_id, track_id, position, added_at)
select :first_playlist + i % (:max_playlist - :first_playlist + 1),
       1 + (random() * (:max_track - 1))::bigint,
       1000 + i / (:max_playlist - :first_playlist + 1),
       timestamptz '2024-06-01 00:00:00+00' + i * interval '11 seconds'
from generate_series(0, :n_playlist_tracks - 1) as i;

-- (user, track) is unique: users take turns, each with a track range of its own offset.
insert into ratings (user_id, track_id, stars, rated_at)
select 1 + i % :max_user, 1 + (i / :max_user + i * 31) % :max_track, (1 + random() * 4)::smallint,
       timestamptz '2024-06-01 00:00:00+00' + i * interval '5 seconds'
from generate_series(0, least(:n_ratings, :max_user * :max_track) - 1) as i
on conflict (user_id, track_id) do nothing;

commit;

-- play_history: the bulk. Drop its secondary indexes, load, re-create them the same way.
drop index play_history_user_played_idx;
drop index play_history_track_idx;

insert into play_history (user_id, track_id, session_id, played_at, played_ms, client)
select 1 + (random() * (:max_user - 1))::bigint, 1 + (random() * (:max_track - 1))::bigint,
       2000000 + (i / 12) * 7,
       timestamptz '2023-01-01 00:00:00+00' + i * interval '5 seconds' + random() * interval '4 seconds',
       (random() * 600000)::int,
       (array['web', 'ios', 'android', 'subsonic', 'desktop'])[1 + (random() * 4)::int]
from generate_series(1, :n_plays) as i;

create index play_history_user_played_idx on play_history (user_id, played_at desc);
create index play_history_track_idx on play_history (track_id);

select setval('play_session_seq', (select max(session_id) from play_history)) \gset

reset session_replication_role;

-- Set hint bits and the visibility map now, so that the first timed read does not pay for it.
-- Not in parallel: a container's /dev/shm is 64 MB, too small for parallel vacuum's shared memory.
vacuum (freeze, analyze, parallel 0);
