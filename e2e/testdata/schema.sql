-- Echo-like schema and sample data for the e2e suite.
--
-- Deterministic: no random() and no now(), so two stacks seeded from this file hold the
-- same rows and the same fingerprint. Row counts are mirrored in e2e/harness_test.go
-- (SeedRowCounts); change both together.
--
-- Applied by the harness with psql (ON_ERROR_STOP) on a stack's first Up(); it is NOT in
-- /docker-entrypoint-initdb.d, so a database restored into a fresh volume is never re-seeded.

begin;

create type user_role as enum ('admin', 'user', 'guest');

create table users (
    id            bigserial primary key,
    username      text not null unique,
    email         text not null,
    password_hash text not null,
    role          user_role not null default 'user',
    settings      jsonb not null default '{}',
    avatar        bytea,
    created_at    timestamptz not null,
    last_login_at timestamptz
);

create table artists (
    id          bigserial primary key,
    name        text not null,
    sort_name   text not null,
    mbid        uuid,
    image_path  text,
    biography   text,
    created_at  timestamptz not null
);
create index artists_sort_name_idx on artists (sort_name);

create table albums (
    id           bigserial primary key,
    artist_id    bigint not null references artists (id) on delete cascade,
    title        text not null,
    year         integer,
    cover_path   text,
    genres       text[] not null default '{}',
    created_at   timestamptz not null
);
create index albums_artist_id_idx on albums (artist_id);

create table tracks (
    id           bigserial primary key,
    album_id     bigint not null references albums (id) on delete cascade,
    disc_number  smallint not null default 1,
    track_number smallint not null,
    title        text not null,
    duration_ms  integer not null check (duration_ms > 0),
    path         text not null unique,
    bitrate_kbps integer,
    replay_gain  numeric(6, 2),
    created_at   timestamptz not null
);
create index tracks_album_id_idx on tracks (album_id, disc_number, track_number);

create table playlists (
    id          bigserial primary key,
    owner_id    bigint not null references users (id) on delete cascade,
    name        text not null,
    description text,
    is_public   boolean not null default false,
    created_at  timestamptz not null,
    updated_at  timestamptz not null
);
create index playlists_owner_id_idx on playlists (owner_id);

create table playlist_tracks (
    id          bigserial primary key,
    playlist_id bigint not null references playlists (id) on delete cascade,
    track_id    bigint not null references tracks (id) on delete cascade,
    position    integer not null,
    added_at    timestamptz not null,
    unique (playlist_id, position)
);

create table ratings (
    id         bigserial primary key,
    user_id    bigint not null references users (id) on delete cascade,
    track_id   bigint not null references tracks (id) on delete cascade,
    stars      smallint not null check (stars between 1 and 5),
    rated_at   timestamptz not null,
    unique (user_id, track_id)
);

-- A plain sequence besides the serial ones: play sessions group consecutive plays.
create sequence play_session_seq start with 1000 increment by 7;

create table play_history (
    id          bigserial primary key,
    user_id     bigint not null references users (id) on delete cascade,
    track_id    bigint not null references tracks (id) on delete cascade,
    session_id  bigint not null default nextval('play_session_seq'),
    played_at   timestamptz not null,
    played_ms   integer not null,
    client      text not null
);
create index play_history_user_played_idx on play_history (user_id, played_at desc);
create index play_history_track_idx on play_history (track_id);

create view track_play_counts as
    select t.id as track_id, t.title, count(p.id) as plays
    from tracks t left join play_history p on p.track_id = t.id
    group by t.id, t.title;

-- ---------------------------------------------------------------------------
-- Sample rows. Base time 2024-01-01 UTC; everything else is arithmetic on i.

-- 50 users; user 1 is the admin, a few are guests with NULL last_login and avatar.
insert into users (username, email, password_hash, role, settings, avatar, created_at, last_login_at)
select
    case when i = 1 then 'admin' else format('listener%s', i) end,
    format('user%s@echo.example', i),
    '$argon2id$v=19$m=65536,t=3,p=4$' || md5('salt' || i) || '$' || md5('hash' || i),
    (case when i = 1 then 'admin' when i % 10 = 0 then 'guest' else 'user' end)::user_role,
    jsonb_build_object('theme', case when i % 2 = 0 then 'dark' else 'light' end,
                       'volume', (i * 7) % 100, 'scrobble', i % 3 = 0),
    case when i % 10 = 0 then null else decode(md5('avatar' || i), 'hex') end,
    timestamptz '2024-01-01 00:00:00+00' + i * interval '1 day',
    case when i % 10 = 0 then null else timestamptz '2024-06-01 00:00:00+00' + i * interval '3 hours' end
from generate_series(1, 50) as i;

-- 200 artists; the first few have names that trip naive quoting and encodings.
insert into artists (name, sort_name, mbid, image_path, biography, created_at)
select
    coalesce(special.name, format('Artist %s', i)),
    coalesce(special.name, format('Artist %s', lpad(i::text, 4, '0'))),
    md5('artist' || i)::uuid,
    case when i <= 40 then format('metadata/artists/%s.jpg', i) end,
    case when i % 5 = 0 then format(E'Line one about artist %s.\nLine two, with a tab:\there.', i) end,
    timestamptz '2024-01-01 00:00:00+00' + i * interval '1 hour'
from generate_series(1, 200) as i
left join (values
    (1, 'Sigur Rós'),
    (2, 'Guns N'' Roses'),
    (3, 'Motörhead'),
    (4, '坂本龍一'),
    (5, 'AC/DC'),
    (6, 'Back\slash "Quoted" Band'),
    (7, 'Emoji 🎵 Ensemble'),
    (8, E'Semi;colon, Comma|Pipe')
) as special(n, name) on special.n = i;

-- 600 albums, 3 per artist.
insert into albums (artist_id, title, year, cover_path, genres, created_at)
select
    (i - 1) / 3 + 1,
    format('Album %s', i),
    case when i % 17 = 0 then null else 1960 + i % 64 end,
    format('covers/%s.jpg', i % 25),
    array[(array['rock', 'jazz', 'ambient', 'electronic', 'folk'])[i % 5 + 1]],
    timestamptz '2024-01-01 00:00:00+00' + i * interval '2 hours'
from generate_series(1, 600) as i;

-- 3000 tracks, 5 per album.
insert into tracks (album_id, disc_number, track_number, title, duration_ms, path, bitrate_kbps, replay_gain, created_at)
select
    (i - 1) / 5 + 1,
    1,
    ((i - 1) % 5 + 1)::smallint,
    format('Track %s', i),
    120000 + (i * 7919) % 240000,
    format('/mnt/music/%s/%s.flac', (i - 1) / 5 + 1, i),
    case when i % 4 = 0 then null else 320 + i % 700 end,
    round(((i % 200) - 100) / 10.0, 2),
    timestamptz '2024-01-01 00:00:00+00' + i * interval '10 minutes'
from generate_series(1, 3000) as i;

-- 120 playlists, spread over the users.
insert into playlists (owner_id, name, description, is_public, created_at, updated_at)
select
    (i - 1) % 50 + 1,
    format('Playlist %s', i),
    case when i % 3 = 0 then null else format('Mix number %s', i) end,
    i % 4 = 0,
    timestamptz '2024-02-01 00:00:00+00' + i * interval '5 hours',
    timestamptz '2024-03-01 00:00:00+00' + i * interval '5 hours'
from generate_series(1, 120) as i;

-- 2400 playlist entries, 20 per playlist.
insert into playlist_tracks (playlist_id, track_id, position, added_at)
select
    (i - 1) / 20 + 1,
    (i * 37) % 3000 + 1,
    (i - 1) % 20 + 1,
    timestamptz '2024-03-01 00:00:00+00' + i * interval '1 minute'
from generate_series(1, 2400) as i;

-- 1500 ratings: 30 distinct tracks for each user.
insert into ratings (user_id, track_id, stars, rated_at)
select
    (i - 1) / 30 + 1,
    ((i - 1) % 30) * 97 + (i - 1) / 30 + 1,
    (i % 5 + 1)::smallint,
    timestamptz '2024-04-01 00:00:00+00' + i * interval '13 minutes'
from generate_series(1, 1500) as i;

-- 20000 plays; session ids come from play_session_seq via the column default.
insert into play_history (user_id, track_id, played_at, played_ms, client)
select
    (i * 13) % 50 + 1,
    (i * 7) % 3000 + 1,
    timestamptz '2024-05-01 00:00:00+00' + i * interval '2 minutes',
    30000 + (i * 31) % 200000,
    (array['web', 'ios', 'android', 'subsonic'])[i % 4 + 1]
from generate_series(1, 20000) as i;

-- Leave a gap in one serial, as deletes in a live database do.
delete from playlists where id in (7, 8);

analyze;

commit;
