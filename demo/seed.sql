-- Sample data for the demo Echo stack: an Echo-like schema (users, library, playlists,
-- ratings, play history) with a few thousand rows. scripts/demo.sh loads it once into a
-- fresh database; it is deliberately not in /docker-entrypoint-initdb.d, so a database
-- restored into an empty volume is never seeded on top.
--
-- Deterministic (no random(), no now()), so every run of the demo holds the same rows.
-- The values include what trips naive backups: non-ASCII and quote characters, NULLs,
-- bytea, jsonb, arrays, an enum, a view, a plain sequence and a gap in a serial.

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
    id         bigserial primary key,
    name       text not null,
    sort_name  text not null,
    mbid       uuid,
    image_path text,
    biography  text,
    created_at timestamptz not null
);

create table albums (
    id         bigserial primary key,
    artist_id  bigint not null references artists (id) on delete cascade,
    title      text not null,
    year       integer,
    cover_path text,
    genres     text[] not null default '{}',
    created_at timestamptz not null
);
create index albums_artist_id_idx on albums (artist_id);

create table tracks (
    id           bigserial primary key,
    album_id     bigint not null references albums (id) on delete cascade,
    track_number smallint not null,
    title        text not null,
    duration_ms  integer not null check (duration_ms > 0),
    path         text not null unique,
    replay_gain  numeric(6, 2),
    created_at   timestamptz not null
);
create index tracks_album_id_idx on tracks (album_id, track_number);

create table playlists (
    id          bigserial primary key,
    owner_id    bigint not null references users (id) on delete cascade,
    name        text not null,
    description text,
    is_public   boolean not null default false,
    created_at  timestamptz not null
);

create table playlist_tracks (
    playlist_id bigint not null references playlists (id) on delete cascade,
    track_id    bigint not null references tracks (id) on delete cascade,
    position    integer not null,
    primary key (playlist_id, position)
);

create table ratings (
    user_id  bigint not null references users (id) on delete cascade,
    track_id bigint not null references tracks (id) on delete cascade,
    stars    smallint not null check (stars between 1 and 5),
    primary key (user_id, track_id)
);

-- Play sessions group consecutive plays; their ids come from a sequence of their own.
create sequence play_session_seq start with 1000 increment by 7;

create table play_history (
    id         bigserial primary key,
    user_id    bigint not null references users (id) on delete cascade,
    track_id   bigint not null references tracks (id) on delete cascade,
    session_id bigint not null default nextval('play_session_seq'),
    played_at  timestamptz not null,
    client     text not null
);
create index play_history_user_played_idx on play_history (user_id, played_at desc);

create view track_play_counts as
    select t.id as track_id, t.title, count(p.id) as plays
    from tracks t left join play_history p on p.track_id = t.id
    group by t.id, t.title;

-- ---------------------------------------------------------------------------
-- Rows. Base time 2024-01-01 UTC; everything else is arithmetic on i.

-- 12 users: 1 admin, guests without avatar or last login.
insert into users (username, email, password_hash, role, settings, avatar, created_at, last_login_at)
select
    case when i = 1 then 'admin' else format('listener%s', i) end,
    format('user%s@echo.example', i),
    '$argon2id$v=19$m=65536,t=3,p=4$' || md5('salt' || i) || '$' || md5('hash' || i),
    (case when i = 1 then 'admin' when i % 5 = 0 then 'guest' else 'user' end)::user_role,
    jsonb_build_object('theme', case when i % 2 = 0 then 'dark' else 'light' end, 'volume', (i * 7) % 100),
    case when i % 5 = 0 then null else decode(md5('avatar' || i), 'hex') end,
    timestamptz '2024-01-01 00:00:00+00' + i * interval '1 day',
    case when i % 5 = 0 then null else timestamptz '2024-06-01 00:00:00+00' + i * interval '3 hours' end
from generate_series(1, 12) as i;

-- 40 artists; the first few have names that trip naive quoting and encodings.
insert into artists (name, sort_name, mbid, image_path, biography, created_at)
select
    coalesce(special.name, format('Artist %s', i)),
    coalesce(special.name, format('Artist %s', lpad(i::text, 3, '0'))),
    md5('artist' || i)::uuid,
    case when i <= 20 then format('metadata/artists/%s.jpg', i) end,
    case when i % 4 = 0 then format(E'About artist %s.\nSecond line,\twith a tab.', i) end,
    timestamptz '2024-01-01 00:00:00+00' + i * interval '1 hour'
from generate_series(1, 40) as i
left join (values
    (1, 'Sigur Rós'),
    (2, 'Guns N'' Roses'),
    (3, 'Motörhead'),
    (4, '坂本龍一'),
    (5, 'AC/DC'),
    (6, 'Back\slash "Quoted" Band')
) as special(n, name) on special.n = i;

-- 120 albums, 3 per artist.
insert into albums (artist_id, title, year, cover_path, genres, created_at)
select
    (i - 1) / 3 + 1,
    format('Album %s', i),
    case when i % 17 = 0 then null else 1960 + i % 64 end,
    format('covers/%s.jpg', i % 12),
    array[(array['rock', 'jazz', 'ambient', 'electronic', 'folk'])[i % 5 + 1]],
    timestamptz '2024-01-01 00:00:00+00' + i * interval '2 hours'
from generate_series(1, 120) as i;

-- 600 tracks, 5 per album.
insert into tracks (album_id, track_number, title, duration_ms, path, replay_gain, created_at)
select
    (i - 1) / 5 + 1,
    ((i - 1) % 5 + 1)::smallint,
    format('Track %s', i),
    120000 + (i * 7919) % 240000,
    format('/mnt/music/%s/%s.flac', (i - 1) / 5 + 1, i),
    case when i % 4 = 0 then null else round(((i % 200) - 100) / 10.0, 2) end,
    timestamptz '2024-01-01 00:00:00+00' + i * interval '10 minutes'
from generate_series(1, 600) as i;

-- 24 playlists with 15 tracks each.
insert into playlists (owner_id, name, description, is_public, created_at)
select
    (i - 1) % 12 + 1,
    format('Playlist %s', i),
    case when i % 3 = 0 then null else format('Mix number %s', i) end,
    i % 4 = 0,
    timestamptz '2024-02-01 00:00:00+00' + i * interval '5 hours'
from generate_series(1, 24) as i;

insert into playlist_tracks (playlist_id, track_id, position)
select (i - 1) / 15 + 1, (i * 37) % 600 + 1, (i - 1) % 15 + 1
from generate_series(1, 360) as i;

-- 240 ratings: 20 distinct tracks per user.
insert into ratings (user_id, track_id, stars)
select (i - 1) / 20 + 1, ((i - 1) % 20) * 29 + (i - 1) / 20 + 1, (i % 5 + 1)::smallint
from generate_series(1, 240) as i;

-- 3000 plays; session ids come from play_session_seq through the column default.
insert into play_history (user_id, track_id, played_at, client)
select
    (i * 13) % 12 + 1,
    (i * 7) % 600 + 1,
    timestamptz '2024-05-01 00:00:00+00' + i * interval '2 minutes',
    (array['web', 'ios', 'android', 'subsonic'])[i % 4 + 1]
from generate_series(1, 3000) as i;

-- Leave a gap in a serial, as deletes in a live database do (cascades to its tracks).
delete from playlists where id = 7;

analyze;

commit;
