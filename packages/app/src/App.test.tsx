import { render, screen } from '@testing-library/react';
import App from './App';

describe('App', () => {
  it('starts at the sign-in page, offering guest sign-in', async () => {
    process.env = {
      NODE_ENV: 'test',
      APP_CONFIG: [
        {
          data: {
            app: { title: 'Ferry test portal' },
            backend: { baseUrl: 'http://localhost:7007' },
          },
          context: 'test',
        },
      ] as any,
    };

    render(App.createRoot());

    expect(await screen.findByText('Ferry test portal')).toBeInTheDocument();
    expect(await screen.findByRole('button', { name: /enter/i })).toBeInTheDocument();
  });
});
